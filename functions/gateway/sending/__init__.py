"""Sending: the send request and its rules, the one send use case, exactly once under a key,
dead letters, and the preview of a send."""
