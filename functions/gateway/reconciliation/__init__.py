"""Reconciliation: sends whose outcome was unknown, found in LiveAll's log and settled."""
