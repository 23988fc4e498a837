"""Tests of the offline Plaid sandbox."""
