"""How a deployment moves the functions' live aliases to the versions it publishes.

`all-at-once`: CloudFormation points each alias at its new version in one step
(no CodeDeploy). A canary or linear rollout: CodeDeploy shifts the alias's
traffic in steps (10 % for 5 minutes, then all, for the default canary) and
rolls back, to the version the alias had, when the function's error alarm (and
for the API function the API 5xx alarm) fires, or when the deployment fails or
is stopped; `cdk deploy` waits for it and reports a rolled-back deployment as
a failed stack update.
"""

from __future__ import annotations

from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_iam as iam
from constructs import Construct

from gateway import names
from infra.components.function import GatewayFunction
from infra.components.monitoring import Monitoring
from infra.config import ROLLOUTS, GatewayConfig
from infra.nag import acknowledge

CODEDEPLOY_LAMBDA_POLICY = "service-role/AWSCodeDeployRoleForLambdaLimited"


class Rollout(Construct):
    """One CodeDeploy application with a deployment group per function alias, unless all at once."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: GatewayConfig,
        functions: dict[str, GatewayFunction],
        monitoring: Monitoring,
    ) -> None:
        super().__init__(scope, construct_id)
        self.deployment_groups: dict[str, codedeploy.LambdaDeploymentGroup] = {}
        config_name = ROLLOUTS[config.rollout_strategy]
        if config_name is None:
            return
        deployment_config: codedeploy.ILambdaDeploymentConfig = getattr(
            codedeploy.LambdaDeploymentConfig, config_name
        )
        application = codedeploy.LambdaApplication(
            self, "Application", application_name=config.physical_name(names.SERVICE_NAME)
        )
        # One service role for both groups (CDK would make one each).
        role = iam.Role(
            self,
            "ServiceRole",
            assumed_by=iam.ServicePrincipal("codedeploy.amazonaws.com"),
            description=f"{names.SERVICE_NAME} {config.stage}: CodeDeploy shifts the functions' aliases",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(CODEDEPLOY_LAMBDA_POLICY)],
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{CODEDEPLOY_LAMBDA_POLICY}]",
            "CodeDeploy's own managed policy for Lambda deployments: it may only invoke the hook functions "
            "named CodeDeployHook_* and update aliases, which is what a traffic shift needs.",
        )
        for label, function in functions.items():
            self.deployment_groups[label] = codedeploy.LambdaDeploymentGroup(
                self,
                f"{label.capitalize()}Deployment",
                application=application,
                deployment_group_name=f"{config.physical_name(names.SERVICE_NAME)}-{label}",
                alias=function.alias,
                deployment_config=deployment_config,
                role=role,
                alarms=monitoring.rollback_alarms(label),
                auto_rollback=codedeploy.AutoRollbackConfig(
                    failed_deployment=True, stopped_deployment=True, deployment_in_alarm=True
                ),
            )
