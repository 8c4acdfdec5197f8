"""Synthesizing the stack offline for tests, and reading what came out."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App

from infra.app import build_app
from infra.config import KEY_PLACEHOLDER_LAYER

REPO = Path(__file__).resolve().parents[2]
EXISTING_SECRET_ARN = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:liveall/token-AbC123"
ONCALL_TOPIC_ARN = "arn:aws:sns:eu-central-1:123456789012:oncall-pager"
ALARM_EMAIL = "ops@example.com"
# Other systems' topics feeding the queue: one of the stack's region, one of another account and region.
SNS_SOURCES = (
    "arn:aws:sns:eu-central-1:123456789012:orders",
    "arn:aws:sns:us-east-1:210987654321:crm-outbox",
)
# Rules feeding the queue: one on the default bus (unnamed: named by its position), one on a bus by ARN.
EVENT_SOURCES: list[dict[str, Any]] = [
    {
        "bus": "default",
        "pattern": {
            "source": [{"prefix": "shop."}],
            "detail-type": ["Order Shipped"],
            "detail": {"notify": {"channel": ["viber", "sms"]}},
        },
    },
    {
        "name": "billing",
        "bus": "arn:aws:events:eu-central-1:123456789012:event-bus/billing",
        "pattern": {"source": ["billing.invoices"], "detail-type": ["Invoice Overdue"]},
    },
]
# Webhooks (secrets in Secrets Manager, referenced by ARN): an API key one filtered by state and
# reference, a basic-auth one for two detail types, and one with every default.
CRM_SECRET_ARN = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:webhooks/crm-Q1w2E3"
ERP_SECRET_ARN = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:webhooks/erp-R4t5Y6"
AUDIT_SECRET_ARN = "arn:aws:secretsmanager:eu-central-1:210987654321:secret:audit-U7i8O9"
WEBHOOKS: list[dict[str, Any]] = [
    {
        "name": "crm",
        "url": "https://crm.example.com/hooks/viber-status?source=gateway",
        "detailTypes": ["Message Status Changed"],
        "states": ["delivered", "undelivered"],
        "referencePrefix": "order-",
        "auth": {"type": "apiKey", "header": "X-Api-Key", "secretArn": CRM_SECRET_ARN},
        "rateLimitPerSecond": 5,
    },
    {
        "name": "erp",
        "url": "https://erp.example.com:8443/api/events",
        "detailTypes": ["Message Tracking Ended", "Balance Low"],
        "auth": {"type": "basic", "secretArn": ERP_SECRET_ARN},
    },
    {
        "name": "audit-log",
        "url": "https://audit.example.org/ingest",
        "auth": {"type": "apiKey", "header": "Authorization", "secretArn": AUDIT_SECRET_ARN},
    },
]
# prod must have someone to alert (the synth stops otherwise): a mailbox and the on-call topic.
DEFAULT_CONTEXT: dict[str, Any] = {"alarmEmail": ALARM_EMAIL, "alarmTopicArn": ONCALL_TOPIC_ARN}
# Another stage, whose own defaults differ (not protected, rolled out at once, only warned
# that no alarm reaches anyone), with the other optional keys set to non-default choices: among
# them message sources and webhooks, so that every check (cdk-nag, cfn-lint, checkov) sees them.
ALTERNATIVE_CONTEXT: dict[str, Any] = {
    "stage": "staging",
    "authMode": "iam",
    "tokenSecretArn": EXISTING_SECRET_ARN,
    "queueMaxConcurrency": "3",  # as `-c` passes it: a string
    "logRetentionDays": 90,
    "apiReservedConcurrency": "25",
    "lowBalanceEuros": "25.5",
    "snapStart": "false",
    "autoSuppressAfterFailures": "0",  # delivery tracking never suppresses a number
    "scheduleHorizonDays": "90",
    "sendWindow": '{"from": "09:00", "to": "21:00", "days": ["mon", "tue", "wed", "thu", "fri"]}',
    "snsSources": ",".join(SNS_SOURCES),  # as -c passes it: comma-separated
    "eventSources": EVENT_SOURCES,  # as cdk.json holds it
    "webhooks": json.dumps(WEBHOOKS),  # as -c passes it: JSON
    # Caps: every one set (prod sets none), as -c passes them and as cdk.json holds them.
    "dailyMessageLimit": "500",
    "dailyCostLimitEuros": 12.5,
    "dailySpendCeilingEuros": "40",
    "stageTimeZone": "Europe/Nicosia",
}


@dataclass(frozen=True)
class Synthesized:
    """One synthesized stack: its template and the validation report of the cloud assembly."""

    stack_name: str
    outdir: Path
    template: dict[str, Any]
    validation_report: dict[str, Any]
    synth_error: str | None = None
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def template_file(self) -> Path:
        return self.outdir / f"{self.stack_name}.template.json"

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] == resource_type
        }

    def properties(self, resource_type: str) -> list[dict[str, Any]]:
        return [resource.get("Properties", {}) for resource in self.resources(resource_type).values()]

    def only(self, resource_type: str) -> dict[str, Any]:
        found = self.properties(resource_type)
        assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
        return found[0]


def stage_of(stack: Synthesized) -> str:
    """The stage a stack was synthesized for (names end in `-<stage>`)."""
    return str(stack.context.get("stage", "prod"))


class TableRecorder:
    """Stands in for a boto3 DynamoDB client: keeps what the local emulator asks for."""

    def create_table(self, **definition: Any) -> None:
        self.definition = definition

    def update_time_to_live(self, **ttl: Any) -> None:
        self.ttl = ttl


def assert_table_built_like(table: dict[str, Any], other: dict[str, Any]) -> None:
    """A table of the gateway as the others are: billed per request, point-in-time recovery,
    encrypted the same way, deleted with the stack, and checkov's customer-managed-key finding
    skipped with a reason."""
    assert table["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["Properties"].get("SSESpecification") == other["Properties"].get("SSESpecification")
    for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
        assert table[policy] == other[policy] == "Delete"
    skips = {skip["id"]: skip["comment"] for skip in table["Metadata"]["checkov"]["skip"]}
    assert set(skips) == {"CKV_AWS_119"}
    assert "aws/dynamodb" in skips["CKV_AWS_119"]


def cdk_json_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((REPO / "cdk.json").read_text())["context"]
    return context


def synthesize(outdir: Path, extra_context: dict[str, Any]) -> Synthesized:
    context = {**cdk_json_context(), KEY_PLACEHOLDER_LAYER: True, **extra_context}
    app = App(outdir=str(outdir), context=context)
    stack = build_app(app)
    synth_error: str | None = None
    try:
        app.synth()
    except RuntimeError as error:  # a failed validation (cdk-nag) still writes template and report
        synth_error = str(error)
    template_file = outdir / f"{stack.stack_name}.template.json"
    if not template_file.exists():
        pytest.fail(f"synthesis wrote no template: {synth_error}")
    report_file = outdir / "validation-report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else {}
    return Synthesized(
        stack_name=stack.stack_name,
        outdir=outdir,
        template=json.loads(template_file.read_text()),
        validation_report=report,
        synth_error=synth_error,
        context=context,
    )
