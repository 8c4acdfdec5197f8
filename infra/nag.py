"""cdk-nag (AwsSolutions) wiring and checkov skips: the check plugin and narrowly scoped acknowledgments."""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, CfnResource, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

NAG_PLUGIN = "AwsSolutions"  # the name cdk-nag's AwsSolutionsChecks reports under


def add_checks(app: App) -> None:
    """Run AwsSolutions on the whole app; an unacknowledged finding fails the synth.

    cdk-nag 3 is a validation plugin (an aspect crashes at synth); its report is
    written to <outdir>/validation-report.json.
    """
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one finding on `scope` (and its children) only, with the reason.

    `rule_id` is a rule (`AwsSolutions-SMG4`) or one finding of a rule that
    reports several (`AwsSolutions-IAM5[Resource::*]`). CDK records it under
    the plugin's name, as the synth error message spells it.
    """
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{NAG_PLUGIN}::{rule_id}", reason=reason))


def skip_checkov(scope: IConstruct, check_id: str, reason: str) -> None:
    """Acknowledge one checkov finding on the CloudFormation resource of `scope`, with the reason.

    checkov reads `Metadata.checkov.skip` of the resource in the template
    (tests/infra/test_infra_checkov.py runs it on the synthesized templates).
    """
    resource = scope if isinstance(scope, CfnResource) else scope.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{scope.node.path} has no CloudFormation resource to put a checkov skip on")
    existing = resource.get_metadata("checkov") or {}
    skips = [*existing.get("skip", []), {"id": check_id, "comment": reason}]
    resource.add_metadata("checkov", {**existing, "skip": skips})
