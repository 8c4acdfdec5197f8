"""cdk-nag (AwsSolutions) and cfn-lint pass on the synthesized templates."""

from __future__ import annotations

import json
from pathlib import Path

from cfnlint.api import ManualArgs, lint_file  # type: ignore[import-untyped]

from tests.infra.synth import Synthesized

# CDK adds DependsOn that a GetAtt already implies (W3005): harmless, and CDK's own habit.
CFN_LINT_IGNORED = ["W3005"]
CFN_LINT_REGIONS = ["us-east-1", "eu-central-1"]
# The only findings outside cdk-nag that tests expect: the layer is the placeholder, and
# (another stage than prod) no alarm subscriber.
EXPECTED_ANNOTATIONS = {
    "Annotation::viber-gateway:placeholder-layer",
    "Annotation::viber-gateway:no-alarm-subscriber",
}


def test_cdk_nag_finds_nothing_unacknowledged(any_stack: Synthesized) -> None:
    # Given the validation report of the synthesis (cdk-nag runs as a validation plugin)
    reports = any_stack.validation_report.get("pluginReports", [])

    # When its findings are listed
    nag_findings = [
        f"{violation['ruleName']} at {construct['constructPath']}"
        for report in reports
        if report["pluginName"] == "AwsSolutions"
        for violation in report["violations"]
        for construct in violation["violatingConstructs"]
    ]
    annotations = {
        violation["ruleName"]
        for report in reports
        if report["pluginName"] != "AwsSolutions"
        for violation in report["violations"]
    }

    # Then synthesis passed, no AwsSolutions rule has an unacknowledged finding, warnings included
    assert any_stack.synth_error is None, any_stack.synth_error
    assert nag_findings == []
    assert annotations <= EXPECTED_ANNOTATIONS


def acknowledgments(stack: Synthesized) -> dict[tuple[str, str], str]:
    """(construct path below the stack, acknowledged finding) -> reason, from the assembly's metadata."""
    metadata = json.loads((stack.outdir / f"{stack.stack_name}.metadata.json").read_text())
    found = {}
    for path, entries in metadata.items():
        for entry in entries:
            if entry["type"] == "aws:cdk:acknowledged-rules":
                for rule_id, reason in entry["data"].items():
                    found[(path.removeprefix(f"/{stack.stack_name}/"), rule_id)] = reason
    return found


# The function's routes: in api_key mode, authorized by the key (acknowledged per method).
API_KEY_ROUTES = (
    "messages/POST",
    "messages/GET",
    "messages/{smsid}/GET",
    "messages/preview/POST",
    "account/balance/GET",
    "suppressions/GET",
    "suppressions/import/POST",
    "suppressions/{number}/GET",
    "suppressions/{number}/PUT",
    "suppressions/{number}/DELETE",
    "schedules/GET",
    "schedules/{schedule_id}/GET",
    "schedules/{schedule_id}/DELETE",
)
# The schedules of the stage's group, whose names the functions make at run time (<id>-<part>).
SCHEDULES_OF_THE_GROUP = (
    "AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:"
    "<AWS::AccountId>:schedule/viber-gateway-prod/*]"
)


def test_acknowledgments_are_few_narrow_and_explained(default_stack: Synthesized) -> None:
    # Given the acknowledgments recorded in the cloud assembly
    acknowledged = acknowledgments(default_stack)

    # Then each sits on the one construct that needs it, never on the stack or a whole construct tree
    assert set(acknowledged) == {
        ("ProviderToken/Secret", "AwsSolutions::AwsSolutions-SMG4"),
        ("Api/Handler/Role", "AwsSolutions::AwsSolutions-IAM5[Resource::*]"),
        ("Api/Handler/Function", "AwsSolutions::AwsSolutions-L1"),
        ("Queue/Handler/Function", "AwsSolutions::AwsSolutions-L1"),
        ("Queue/Handler/Role", "AwsSolutions::AwsSolutions-IAM5[Resource::*]"),
        ("Api/Handler/Role", SCHEDULES_OF_THE_GROUP),
        ("Queue/Handler/Role", SCHEDULES_OF_THE_GROUP),
        (
            "Api/RestApi/CloudWatchRole",
            "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
        ),
        ("Api/RestApi/DeploymentStage.prod", "AwsSolutions::AwsSolutions-APIG3"),
        (
            "Rollout/ServiceRole",
            "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSCodeDeployRoleForLambdaLimited]",
        ),
        *(
            (f"Api/RestApi/Default/{route}", f"AwsSolutions::AwsSolutions-{rule}")
            for route in API_KEY_ROUTES
            for rule in ("APIG4", "COG4")
        ),
        ("Api/RestApi/Default/openapi.json/GET", "AwsSolutions::AwsSolutions-APIG4"),
        ("Api/RestApi/Default/openapi.json/GET", "AwsSolutions::AwsSolutions-COG4"),
        ("Scheduled/Handler/Function", "AwsSolutions::AwsSolutions-L1"),
        ("Scheduled/Handler/Role", "AwsSolutions::AwsSolutions-IAM5[Resource::*]"),
        ("Scheduled/FailedRuns", "AwsSolutions::AwsSolutions-SQS3"),
        ("Tracking/BacklogQueue", "AwsSolutions::AwsSolutions-SQS3"),
    }
    # And each says why
    assert all(len(reason) > 30 for reason in acknowledged.values())


def test_iam_mode_needs_no_authorization_acknowledgment_on_sends(alternative_stack: Synthesized) -> None:
    # Given authMode=iam and an existing secret
    acknowledged = acknowledgments(alternative_stack)

    # Then every route of the function is authorized (only the Cognito-specific rule is acknowledged)
    for route in API_KEY_ROUTES:
        assert (f"Api/RestApi/Default/{route}", "AwsSolutions::AwsSolutions-APIG4") not in acknowledged
        assert (f"Api/RestApi/Default/{route}", "AwsSolutions::AwsSolutions-COG4") in acknowledged
    # And the stack creates no secret to acknowledge
    assert not [key for key in acknowledged if key[0].startswith("ProviderToken/")]


def test_cfn_lint_passes(any_stack: Synthesized, tmp_path: Path) -> None:
    # Given the synthesized template written to a file
    template_file = tmp_path / "template.json"
    template_file.write_text(json.dumps(any_stack.template))

    # When cfn-lint checks it in two regions
    matches = lint_file(
        template_file, config=ManualArgs(ignore_checks=CFN_LINT_IGNORED, regions=CFN_LINT_REGIONS)
    )

    # Then it finds nothing
    assert [str(match) for match in matches] == []
