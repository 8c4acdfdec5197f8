"""SnapStart's runtime hooks, in fresh function processes against a moto server and the sandbox.

Before the snapshot the hooks prime without reaching out: no AWS request goes
out, no socket is open, no token is cached and LiveAll hears nothing. After the
restore, the first send reads the secret once and opens its own connection. A
process that never ran the hooks (no SnapStart) sends all the same.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from gateway import names
from local.emulator import provision
from sandbox import ProviderSandbox
from tests.conftest import TEST_TOKEN, load_event

REPO = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("snapshot_child.py")
GET_SECRET_VALUE = "secretsmanager.GetSecretValue"


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    credentials = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=url, region_name="eu-central-1", **credentials)

    provision(client, provider_token=TEST_TOKEN, with_sink=False)
    yield url
    server.stop()


def run_child(
    handler: str, scenario: str, event: dict[str, Any], *, moto_url: str, provider: ProviderSandbox, tmp: Path
) -> dict[str, Any]:
    event_path = tmp / "event.json"
    event_path.write_text(json.dumps(event))
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "PYTHON"))}
    environment = {
        **inherited,
        "PYTHONPATH": str(REPO / "functions"),
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "ViberGatewayTest",
        names.ENV_PROVIDER_BASE_URL: provider.url,
        names.ENV_PROVIDER_TOKEN_SECRET: names.TOKEN_SECRET_NAME,
        names.ENV_IDEMPOTENCY_TABLE: names.IDEMPOTENCY_TABLE_NAME,
        names.ENV_TRACKING_TABLE: names.TRACKING_TABLE_NAME,
        # The default destination policy (Greek and Cypriot mobiles) and caps on, as deployed stages have
        names.ENV_ALLOWED_COUNTRIES: ",".join(names.DEFAULT_ALLOWED_COUNTRIES),
        names.ENV_ALLOWED_NUMBER_TYPES: ",".join(names.DEFAULT_ALLOWED_NUMBER_TYPES),
        names.ENV_USAGE_TABLE: names.USAGE_TABLE_NAME,
        names.ENV_DAILY_MESSAGE_LIMIT: "1000",
    }
    completed = subprocess.run(
        [sys.executable, str(CHILD), handler, scenario, str(event_path)],
        env=environment,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return report


def sqs_event_of(body: dict[str, Any], message_id: str) -> dict[str, Any]:
    event = load_event("sqs-batch.json")
    record = {**event["Records"][0], "messageId": message_id, "body": json.dumps(body)}
    return {"Records": [record]}


@pytest.mark.parametrize("handler", ["api_handler", "queue_handler"])
def test_the_before_snapshot_hooks_prime_without_reaching_out_and_a_restored_send_reads_the_secret_once(
    handler: str, moto_server: str, provider: ProviderSandbox, tmp_path: Path
) -> None:
    # Given a fresh process of the function, the way SnapStart runs it
    if handler == "api_handler":
        event = load_event("api-post-im.json")
    else:
        event = sqs_event_of(json.loads(load_event("api-post-im.json")["body"]), "snapshot-hooks-1")

    # When it imports the handler and runs the before-snapshot hooks, then the after-restore ones
    # and serves one request
    report = run_child(
        handler, "snapshot-then-send", event, moto_url=moto_server, provider=provider, tmp=tmp_path
    )

    # Then before the snapshot: its hooks were registered once each, nothing went to AWS, no
    # socket is open, no token is held, LiveAll had no request
    primed = report["after_snapshot_hooks"]
    assert primed["hooks"] == [1, 1]
    assert primed["aws_requests"] == []
    assert primed["sockets_open"] == 0
    assert primed["token_cached"] is False
    assert primed["provider_connections"] == 0
    # And the policy's patterns of the primed countries (GR, CY) are compiled, the caps' code loaded
    assert primed["guard"] == {"policy_regions_compiled": 2, "caps_loaded": True}
    # And after the restore the send read the secret once, opened one connection to LiveAll,
    # and was answered and sent once
    sent = report["after_send"]
    assert sent["aws_requests"].count(GET_SECRET_VALUE) == 1
    assert sent["provider_connections"] == 1
    assert sent["token_cached"] is True
    answer = report["answer"]
    if handler == "api_handler":
        assert answer["statusCode"] == 200, answer
    else:
        assert answer == {"batchItemFailures": []}
    assert len(provider.ledger) == 1


def test_a_send_works_in_a_process_that_never_ran_the_hooks(
    moto_server: str, provider: ProviderSandbox, tmp_path: Path
) -> None:
    # Given a fresh process without SnapStart: nothing runs the hooks
    # When it serves its first request
    report = run_child(
        "api_handler",
        "send-without-hooks",
        load_event("api-post-im.json"),
        moto_url=moto_server,
        provider=provider,
        tmp=tmp_path,
    )
    # Then it sends, reading the secret once, as any cold start does
    assert report["answer"]["statusCode"] == 200, report["answer"]
    assert report["after_send"]["aws_requests"].count(GET_SECRET_VALUE) == 1
    assert len(provider.ledger) == 1
