"""The suppression list: numbers that must not be messaged (opt-outs, dead numbers), applied to every send.

`rules`: what an entry is (number, reason, scope, expiry) and how the send path
reads the list. `store`: the DynamoDB table behind it. Nothing here knows Lambda.
"""
