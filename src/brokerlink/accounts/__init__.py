"""Accounts as the user sees them: provider, capabilities, balances and freshness."""
