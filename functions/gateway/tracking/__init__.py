"""Delivery tracking: the tracking table, the tracker that polls LiveAll, status lookups, and the
status events it publishes."""
