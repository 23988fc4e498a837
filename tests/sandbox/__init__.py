"""Tests of the offline provider sandboxes."""
