"""Invoke a handler on an event file against moto and the provider sandbox, and print its answer.

python -m local.invoke events/api-post-im.json
python -m local.invoke events/sqs-batch.json      # picks the queue handler by the event's shape
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("event", type=Path, help="an event file, e.g. events/api-post-im.json")
    args = parser.parse_args(argv)
    event: dict[str, Any] = json.loads(args.event.read_text())

    os.environ.update(
        {
            "AWS_DEFAULT_REGION": "eu-central-1",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "POWERTOOLS_TRACE_DISABLED": "1",
        }
    )
    import boto3
    from moto import mock_aws

    from gateway import names
    from sandbox import ProviderSandbox

    token = secrets.token_hex(20)
    with mock_aws(), ProviderSandbox(tokens={token}) as provider:
        from local.emulator import provision

        queues = provision(boto3.client, provider_token=token)
        os.environ[names.ENV_DEAD_LETTER_QUEUE_URL] = queues.dead_letter_queue_url
        os.environ[names.ENV_PROVIDER_BASE_URL] = provider.url
        os.environ[names.ENV_PROVIDER_TOKEN_SECRET] = names.TOKEN_SECRET_NAME
        from local.functions import lambda_context

        if "Records" in event:
            from queue_handler import handler

            context = lambda_context(
                f"{names.SERVICE_NAME}-queue",
                memory_mb=names.QUEUE_FUNCTION_MEMORY_MB,
                timeout_seconds=names.QUEUE_FUNCTION_TIMEOUT_SECONDS,
            )
        else:
            from api_handler import handler  # type: ignore[assignment]

            context = lambda_context(f"{names.SERVICE_NAME}-api")
        answer = handler(event, context)  # type: ignore[arg-type]
        print("--- handler answer ---")
        print(json.dumps(answer, indent=2))
        print(f"--- the sandbox accepted {len(provider.ledger)} SendIM request(s) ---")
        for entry in provider.ledger:
            shown = {k: v for k, v in entry.payload.items() if k != "apitoken"}
            print(
                json.dumps({"submission_id": entry.submission_id, "smsids": entry.smsids, "payload": shown})
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
