"""Scheduled sends: send_at, send windows in the recipient's time, schedules to list and cancel."""
