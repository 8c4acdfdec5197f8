"""The viber-gateway domain: request rules, provider client, token, send use case.

Nothing in this package imports Lambda event types, so the API handler, the
queue handler, the local runner and the benchmarks all drive the same code.
"""
