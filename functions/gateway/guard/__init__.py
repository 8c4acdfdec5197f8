"""Guarding the account: which numbers a stage may message, and how much a caller or a day may send."""
