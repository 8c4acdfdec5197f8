"""Settle the sends whose outcome is unknown now, rather than at the next scheduled run.

    python -m tools.reconcile                              # make run's service on this machine
    python -m tools.reconcile --function ARN               # the deployed stack (output ScheduledFunction)
    python -m tools.reconcile --dismiss ID [--dismiss ID]  # ambiguous cases you settled by hand

It runs the scheduled function's reconcile task (gateway.reconciliation.reconciler) and prints
what it found: how many sends proved sent or not sent, how many wait for the
grace period, and each ambiguous one with its candidates, which it never guesses.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import urllib3

DEFAULT_LOCAL_URL = "http://127.0.0.1:3000"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--local-url", default=DEFAULT_LOCAL_URL, help="make run's API (default %(default)s)")
    parser.add_argument("--function", help="the deployed scheduled function's name: invoke it instead")
    parser.add_argument("--dismiss", action="append", default=[], metavar="ID", help="an ambiguous case's id")
    args = parser.parse_args(argv)
    request = {"task": "reconcile", "dismiss": args.dismiss}
    try:
        report = _invoke(args.function, request) if args.function else _local(args.local_url, request)
    except (OSError, urllib3.exceptions.HTTPError, RuntimeError) as error:
        print(f"reconcile: {error}", file=sys.stderr)
        return 1
    if report.get("skipped"):
        print(
            "reconcile: another run (the schedule's) is in progress; try again in a minute", file=sys.stderr
        )
        return 1
    print(render(report))
    return 0


def _local(url: str, request: dict[str, Any]) -> dict[str, Any]:
    response = urllib3.PoolManager().request(
        "POST", f"{url}/_local/reconcile", body=json.dumps(request).encode(), timeout=120, retries=False
    )
    if response.status != 200:
        raise RuntimeError(f"{url} answered HTTP {response.status}; is make run running there?")
    return dict(response.json())


def _invoke(function: str, request: dict[str, Any]) -> dict[str, Any]:
    import boto3

    answer = boto3.client("lambda").invoke(FunctionName=function, Payload=json.dumps(request).encode())
    payload = json.loads(answer["Payload"].read())
    if answer.get("FunctionError"):
        raise RuntimeError(f"the function failed: {payload}")
    return dict(payload)


def render(report: dict[str, Any]) -> str:
    ambiguous = report.get("ambiguous", [])
    lines = [
        f"checked {report.get('checked', 0)}: sent {report.get('sent', 0)}, "
        f"not sent {report.get('not_sent', 0)}, waiting for the grace period {report.get('waiting', 0)}, "
        f"ambiguous {len(ambiguous)}, dismissed {report.get('dismissed', 0)}; "
        f"answers saved after a store failure {report.get('answers_saved', 0)} "
        f"({report.get('provider_calls', 0)} provider calls)"
    ]
    for case in ambiguous:
        lines.append(
            f"  ambiguous {case['unknown_id']}: {case['why']}; key {case.get('idempotency_key')}, "
            f"reference {case.get('reference')}, sent at {case.get('started_at')} "
            f"to {', '.join(case['destinations'])}"
        )
        lines.extend(
            f"    candidate smsid {c['smsid']} to {c['destination']}, batch {c['batch_id']}, "
            f"submitted {c['submitted_at']}"
            for c in case.get("candidates", [])
        )
    if ambiguous:
        lines.append("Check the candidates with LiveAll, act, then dismiss: --dismiss ID")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
