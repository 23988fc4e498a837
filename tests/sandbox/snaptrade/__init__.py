"""Tests of the SnapTrade sandbox."""
