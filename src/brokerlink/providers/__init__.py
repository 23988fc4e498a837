"""Provider adapters: one folder per aggregation provider, behind the `domain` contracts."""
