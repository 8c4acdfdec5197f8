"""The viber-gateway domain, grouped by capability over a small core.

Core (modules here, importing nothing above them): names, settings, failures (the taxonomy),
observability, aws (clients), clock, fields (the values requests are made of), phone,
events (the bus), problems, snapshot, compact, responses (the API's documented answers).

Capabilities (packages), each importing only the core and the ones listed before it:
  provider/        LiveAll's API: the client, the token, the read endpoints and their answers
  guard/           what a stage may send: the destination policy (countries, kinds of number)
  suppression/     numbers that must not be messaged
  tracking/        where each message stands: the table, the tracker, lookups, status events
  sending/         the send request and the one send use case: exactly once, dead letters, preview
  account/         the balance, and its scheduled check
  reconciliation/  sends whose outcome was unknown, settled
  schedules/       send later: send_at, send windows, schedules to list and cancel
intake.py, on top, takes a message from any source: scheduled, or sent now.

Nothing in this package imports Lambda event types, so the API handler, the queue handler,
the local runner and the benchmarks all drive the same code.
"""
