"""What both functions share: code asset, dependency layer, runtime, role, log group, grants."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Annotations, Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from gateway import names
from infra.config import LOG_RETENTION_DAYS, ConfigError, GatewayConfig
from infra.nag import acknowledge

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO_ROOT / "functions"
# Built by `make build` (pip's cross-platform install, no Docker): python/ inside.
LAYER_DIR = REPO_ROOT / "build" / "layer"
# Never shipped: bytecode the host wrote (for the wrong Python) and tool caches.
FUNCTION_CODE_EXCLUDES = ["**/__pycache__", "**/*.pyc", "**/.mypy_cache", "**/.pytest_cache"]

LOG_LEVEL = "INFO"


def lambda_runtime() -> lambda_.Runtime:
    """The Runtime matching names.LAMBDA_PYTHON_VERSION, the version `make build` builds the layer for."""
    member = "PYTHON_" + names.LAMBDA_PYTHON_VERSION.replace(".", "_")
    runtime = getattr(lambda_.Runtime, member, None)
    if not isinstance(runtime, lambda_.Runtime):
        raise ConfigError(f"aws-cdk-lib offers no lambda Runtime.{member} (names.LAMBDA_PYTHON_VERSION)")
    return runtime


def log_retention(config: GatewayConfig) -> logs.RetentionDays:
    return logs.RetentionDays[LOG_RETENTION_DAYS[config.log_retention_days]]


class DependencyLayer(Construct):
    """The third-party packages of requirements.txt, built for arm64 by `make build`.

    With the `placeholderLayer` context flag (tests only) an empty directory
    stands in, so that synthesizing needs neither the network nor a build.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: GatewayConfig) -> None:
        super().__init__(scope, construct_id)
        if config.placeholder_layer:
            layer_dir = _placeholder_layer_dir()
            description = "PLACEHOLDER without dependencies (synthesized for tests): do not deploy"
            Annotations.of(self).add_warning_v2(
                "viber-gateway:placeholder-layer",
                "placeholderLayer is set: the dependency layer is empty and the functions cannot run",
            )
        else:
            if not (LAYER_DIR / "python").is_dir():
                raise ConfigError(
                    f"{LAYER_DIR.relative_to(REPO_ROOT)}/python does not exist: run `make build` first "
                    "(tests synthesize with -c placeholderLayer=true instead)"
                )
            layer_dir = LAYER_DIR
            description = f"{names.SERVICE_NAME} dependencies (requirements.txt) for arm64"
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=lambda_.Code.from_asset(str(layer_dir)),
            compatible_runtimes=[lambda_runtime()],
            compatible_architectures=[lambda_.Architecture.ARM_64],
            description=description,
        )


def _placeholder_layer_dir() -> Path:
    # Outside the repository (build/layer stays the real one's), the same for every synthesis.
    layer_dir = Path(tempfile.gettempdir()) / "viber-gateway-placeholder-layer"
    (layer_dir / "python").mkdir(parents=True, exist_ok=True)
    (layer_dir / "python" / "PLACEHOLDER.txt").write_text(
        "Empty stand-in for build/layer, used when synthesizing in tests. Run `make build`.\n"
    )
    return layer_dir


@dataclass(frozen=True)
class SharedFunctionResources:
    """What every function of the service gets: the same code, layer, secret and table."""

    config: GatewayConfig
    code: lambda_.Code
    layer: lambda_.ILayerVersion
    token_secret: secretsmanager.ISecret
    idempotency_table: dynamodb.ITable

    @classmethod
    def create(
        cls,
        *,
        config: GatewayConfig,
        layer: lambda_.ILayerVersion,
        token_secret: secretsmanager.ISecret,
        idempotency_table: dynamodb.ITable,
    ) -> SharedFunctionResources:
        code = lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=FUNCTION_CODE_EXCLUDES)
        return cls(
            config=config,
            code=code,
            layer=layer,
            token_secret=token_secret,
            idempotency_table=idempotency_table,
        )

    def environment(self) -> dict[str, str]:
        return {
            names.ENV_PROVIDER_TOKEN_SECRET: self.token_secret.secret_arn,
            names.ENV_PROVIDER_BASE_URL: self.config.provider_base_url,
            names.ENV_METRICS_NAMESPACE: names.DEFAULT_METRICS_NAMESPACE,
            names.ENV_SERVICE_NAME: names.SERVICE_NAME,
            names.ENV_IDEMPOTENCY_TABLE: self.idempotency_table.table_name,
            names.ENV_LOG_LEVEL: LOG_LEVEL,
        }


class GatewayFunction(Construct):
    """One function of the service: arm64, JSON logs into its own log group, X-Ray active.

    Its role is written out instead of using AWSLambdaBasicExecutionRole, so it
    can write to its own log group only. It may read the token secret and
    read/write the idempotency table; anything more is granted by the caller.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        shared: SharedFunctionResources,
        handler: str,
        description: str,
        timeout_seconds: int,
        memory_mb: int,
        extra_environment: dict[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(self, "LogGroup", retention=log_retention(shared.config))
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{names.SERVICE_NAME} {shared.config.stage}: {description}",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=lambda_runtime(),
            architecture=lambda_.Architecture.ARM_64,
            code=shared.code,
            handler=handler,
            layers=[shared.layer],
            timeout=Duration.seconds(timeout_seconds),
            memory_size=memory_mb,
            role=self.role,
            environment={**shared.environment(), **(extra_environment or {})},
            tracing=lambda_.Tracing.ACTIVE,
            logging_format=lambda_.LoggingFormat.JSON,
            # Lambda drops JSON application logs below this level: keep it equal to Powertools'.
            application_log_level_v2=lambda_.ApplicationLogLevel[LOG_LEVEL],
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            log_group=self.log_group,
        )
        shared.token_secret.grant_read(self.role)
        shared.idempotency_table.grant_read_write_data(self.role)
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "Only the X-Ray statement (tracing ACTIVE) has Resource '*': xray:PutTraceSegments and "
            "xray:PutTelemetryRecords support no resource-level permissions.",
        )
