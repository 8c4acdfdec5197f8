"""What the functions share: code asset, dependency layer, runtime, role, log group, grants, alias."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Annotations, Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from gateway import names
from infra import artifacts
from infra.components.schedules import ScheduledSends
from infra.config import KEY_LAMBDA_PYTHON_VERSION, LOG_RETENTION_DAYS, ConfigError, GatewayConfig, euros_text
from infra.nag import acknowledge, skip_checkov

REPO_ROOT = artifacts.REPO_ROOT
# Built by `make build` (pip's cross-platform install and the runtime's compileall, no Docker).
LAYER_DIR = artifacts.LAYER_DIR

LOG_LEVEL = "INFO"
LOG_GROUP_ENCRYPTION_REASON = (
    "CloudWatch Logs encrypts every log group at rest; these hold no token and phone numbers only masked, "
    "and a customer managed key would need a key policy for the logs service of each region."
)
# The alias the API integration and the event source mapping invoke; a deployment moves it
# to the new version, at once or step by step (infra.components.rollout).
LIVE_ALIAS = "live"
# The warning CDK adds to every function with SnapStart, whether it publishes versions or not.
SNAP_START_REQUIRES_PUBLISH_WARNING = "@aws-cdk/aws-lambda:snapStartRequirePublish"
# What Powertools' DynamoDBPersistenceLayer calls, and nothing else of the table's API.
IDEMPOTENCY_TABLE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
)
# What each function does with the tracking table (gateway.tracking), and nothing more.
# Query is granted on the table and its index `open` (CDK adds index ARNs for a table with indexes).
TRACKING_SEND_ACTIONS = ("dynamodb:BatchWriteItem", "dynamodb:PutItem")  # record sends, unknowns
TRACKING_LOOKUP_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:Query")  # GET /messages
TRACKING_SCHEDULED_ACTIONS = (  # tracker, reconciler, balance check: items, leases, state
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
)
# What each function does with the tracking backlog queue (gateway.tracking): the API and queue
# functions keep there a record the tracking table refused; the tracker writes it later and deletes it.
TRACKING_BACKLOG_SEND_ACTIONS = ("sqs:SendMessage",)
TRACKING_BACKLOG_TRACKER_ACTIONS = ("sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage")
# What each function does with the suppression list (gateway.suppression), and nothing more; the
# table has no index. TransactWriteItems has no permission of its own: each of its items needs
# the action it performs (PutItem, UpdateItem, DeleteItem, ConditionCheckItem).
SUPPRESSION_CHECK_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:GetItem")  # sends: a number's bucket
SUPPRESSION_API_ACTIONS = (  # sends, and the list's API: add, change, remove (transactions), list, import
    *SUPPRESSION_CHECK_ACTIONS,
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
)
SUPPRESSION_SCHEDULED_ACTIONS = (  # delivery tracking suppresses numbers that failed for good
    *SUPPRESSION_CHECK_ACTIONS,
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
)

# What the API and queue functions do with the usage table (gateway.guard.caps), and nothing more:
# read a caller's limits, count a send (conditional UpdateItem), give a count back, mark the day's
# brake; PutItem writes a caller's limits item. No Query, Scan or Delete: items are read by key and
# leave by TTL. The scheduled function counts nothing: it gets neither the table nor its name.
USAGE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")


def lambda_runtime(config: GatewayConfig) -> lambda_.Runtime:
    """The Runtime of the context's lambdaPythonVersion, the version `make build` compiled for."""
    member = "PYTHON_" + config.lambda_python_version.replace(".", "_")
    runtime = getattr(lambda_.Runtime, member, None)
    if not isinstance(runtime, lambda_.Runtime):
        raise ConfigError(
            f"context key {KEY_LAMBDA_PYTHON_VERSION!r}: aws-cdk-lib offers no lambda Runtime.{member}"
        )
    return runtime


def log_retention(config: GatewayConfig) -> logs.RetentionDays:
    return logs.RetentionDays[LOG_RETENTION_DAYS[config.log_retention_days]]


class DependencyLayer(Construct):
    """The third-party packages of requirements.txt, built for arm64 with bytecode by `make build`.

    Synthesis refuses a layer built for another Python than the runtime's, or from
    another requirements.txt (its stamp says). With the `placeholderLayer` context
    flag (tests only) an empty directory stands in, so that synthesizing needs
    neither the network nor a build.
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
            try:
                artifacts.check_layer(LAYER_DIR, version=config.lambda_python_version)
            except artifacts.BuildError as error:
                raise ConfigError(str(error)) from error
            layer_dir = LAYER_DIR
            description = (
                f"{names.SERVICE_NAME} dependencies (requirements.txt) for arm64, "
                f"python{config.lambda_python_version} bytecode"
            )
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=lambda_.Code.from_asset(str(layer_dir)),
            compatible_runtimes=[lambda_runtime(config)],
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
    """What every function of the service gets: the same code, layer, secret and tables."""

    config: GatewayConfig
    code: lambda_.Code
    layer: lambda_.ILayerVersion
    token_secret: secretsmanager.ISecret
    idempotency_table: dynamodb.ITable
    tracking_table: dynamodb.ITable
    tracking_backlog_queue: sqs.IQueue
    suppression_table: dynamodb.ITable
    usage_table: dynamodb.ITable

    @classmethod
    def create(
        cls,
        *,
        config: GatewayConfig,
        layer: lambda_.ILayerVersion,
        token_secret: secretsmanager.ISecret,
        idempotency_table: dynamodb.ITable,
        tracking_table: dynamodb.ITable,
        tracking_backlog_queue: sqs.IQueue,
        suppression_table: dynamodb.ITable,
        usage_table: dynamodb.ITable,
    ) -> SharedFunctionResources:
        # functions/'s sources with their checked-hash bytecode for the runtime (about 15 ms of
        # every cold start less than compiling them there), staged under build/function-code/.
        try:
            code_dir = artifacts.stage_function_code(config.lambda_python_version)
        except artifacts.BuildError as error:
            raise ConfigError(str(error)) from error
        code = lambda_.Code.from_asset(str(code_dir))
        return cls(
            config=config,
            code=code,
            layer=layer,
            token_secret=token_secret,
            idempotency_table=idempotency_table,
            tracking_table=tracking_table,
            tracking_backlog_queue=tracking_backlog_queue,
            suppression_table=suppression_table,
            usage_table=usage_table,
        )

    def environment(self) -> dict[str, str]:
        return {
            names.ENV_PROVIDER_TOKEN_SECRET: self.token_secret.secret_arn,
            names.ENV_PROVIDER_BASE_URL: self.config.provider_base_url,
            # The stage's own namespace: a dev stage's failures never reach prod's alarms.
            names.ENV_METRICS_NAMESPACE: self.config.metrics_namespace,
            names.ENV_SERVICE_NAME: names.SERVICE_NAME,
            names.ENV_IDEMPOTENCY_TABLE: self.idempotency_table.table_name,
            names.ENV_TRACKING_TABLE: self.tracking_table.table_name,
            names.ENV_TRACKING_BACKLOG_QUEUE_URL: self.tracking_backlog_queue.queue_url,
            names.ENV_SUPPRESSION_TABLE: self.suppression_table.table_name,
            # The destination policy: every send and schedule is checked against it.
            names.ENV_ALLOWED_COUNTRIES: ",".join(self.config.allowed_countries),
            names.ENV_ALLOWED_NUMBER_TYPES: ",".join(self.config.allowed_number_types),
            names.ENV_LOG_LEVEL: LOG_LEVEL,
        }

    def usage_environment(self) -> dict[str, str]:
        """For the functions that count sends: the usage table, the stage's day, and the caps the
        context sets (only those set: a cap left out is no cap)."""
        config = self.config
        environment = {
            names.ENV_USAGE_TABLE: self.usage_table.table_name,
            names.ENV_STAGE_TIME_ZONE: config.stage_time_zone,
        }
        if config.daily_message_limit is not None:
            environment[names.ENV_DAILY_MESSAGE_LIMIT] = str(config.daily_message_limit)
        if config.daily_cost_limit_euros is not None:
            environment[names.ENV_DAILY_COST_LIMIT_EUROS] = euros_text(config.daily_cost_limit_euros)
        if config.daily_spend_ceiling_euros is not None:
            environment[names.ENV_DAILY_SPEND_CEILING_EUROS] = euros_text(config.daily_spend_ceiling_euros)
        return environment


def grant_tracking(role: iam.IRole, table: dynamodb.ITable, actions: tuple[str, ...]) -> None:
    """Items of the table, and Query on its `open` index only: no wildcard over its indexes."""
    item_actions = [action for action in actions if action != "dynamodb:Query"]
    if item_actions:
        role.add_to_principal_policy(iam.PolicyStatement(actions=item_actions, resources=[table.table_arn]))
    if "dynamodb:Query" in actions:
        index_arn = f"{table.table_arn}/index/{names.TRACKING_OPEN_INDEX}"
        role.add_to_principal_policy(iam.PolicyStatement(actions=["dynamodb:Query"], resources=[index_arn]))


def grant_tracking_backlog(role: iam.IRole, queue: sqs.IQueue, actions: tuple[str, ...]) -> None:
    """These actions on the backlog queue, by name: the senders only send, the tracker only reads."""
    if not actions or any("*" in action or not action.startswith("sqs:") for action in actions):
        raise ValueError(f"name each SQS action on the tracking backlog queue, got {actions!r}")
    role.add_to_principal_policy(iam.PolicyStatement(actions=list(actions), resources=[queue.queue_arn]))


def grant_usage(role: iam.IRole, table: dynamodb.ITable) -> None:
    """USAGE_ACTIONS on the usage table's items, by name: no wildcard, and no index (it has none)."""
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=list(USAGE_ACTIONS), resources=[table.table_arn])
    )


def grant_suppression(role: iam.IRole, table: dynamodb.ITable, actions: tuple[str, ...]) -> None:
    """These actions on the table's items, by name: no wildcard, and no index (it has none)."""
    if not actions or any("*" in action or not action.startswith("dynamodb:") for action in actions):
        raise ValueError(f"name each DynamoDB action of the suppression list, got {actions!r}")
    role.add_to_principal_policy(iam.PolicyStatement(actions=list(actions), resources=[table.table_arn]))


class GatewayFunction(Construct):
    """One function of the service: arm64, JSON logs into its own log group, X-Ray active,
    SnapStart on its published versions when `snap_start` says so.

    Its role is written out instead of using AWSLambdaBasicExecutionRole, so it
    can write to its own log group only. It may read the token secret and
    read/write idempotency records, use the tracking table, its backlog queue and
    the suppression list with the actions it is given, publish on `event_bus` when given (which
    it is then told the name of), and keep scheduled sends when given
    `scheduled_sends` (told where, and granted what, infra.components.schedules
    says), and count its sends against the caps when `counts_usage` (USAGE_ACTIONS on the usage
    table, told where it is, the stage's time zone and caps); anything more is granted by the caller.
    Every deployment publishes a version; callers invoke `alias`, which
    infra.components.rollout moves to it.
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
        snap_start: bool,
        extra_environment: dict[str, str] | None = None,
        reserved_concurrency: int | None = None,
        unreserved_reason: str = "",
        tracking_actions: tuple[str, ...] = TRACKING_SEND_ACTIONS,
        tracking_backlog_actions: tuple[str, ...] = TRACKING_BACKLOG_SEND_ACTIONS,
        suppression_actions: tuple[str, ...],
        event_bus: events.IEventBus | None = None,
        dead_letter_queue: sqs.IQueue | None = None,
        scheduled_sends: ScheduledSends | None = None,
        counts_usage: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        if reserved_concurrency is None and not unreserved_reason:
            raise ValueError("a function without reserved concurrency must say what bounds it")
        self.log_group = logs.LogGroup(self, "LogGroup", retention=log_retention(shared.config))
        skip_checkov(self.log_group, "CKV_AWS_158", LOG_GROUP_ENCRYPTION_REASON)
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
            runtime=lambda_runtime(shared.config),
            architecture=lambda_.Architecture.ARM_64,
            code=shared.code,
            handler=handler,
            layers=[shared.layer],
            timeout=Duration.seconds(timeout_seconds),
            memory_size=memory_mb,
            role=self.role,
            environment={
                **shared.environment(),
                **({names.ENV_EVENT_BUS_NAME: event_bus.event_bus_name} if event_bus is not None else {}),
                **(scheduled_sends.environment() if scheduled_sends is not None else {}),
                **(shared.usage_environment() if counts_usage else {}),
                **(extra_environment or {}),
            },
            tracing=lambda_.Tracing.ACTIVE,
            logging_format=lambda_.LoggingFormat.JSON,
            # Lambda drops JSON application logs below this level: keep it equal to Powertools'.
            application_log_level_v2=lambda_.ApplicationLogLevel[LOG_LEVEL],
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            log_group=self.log_group,
            reserved_concurrent_executions=reserved_concurrency,
            # Only the scheduled function is invoked asynchronously: what fails there is kept.
            dead_letter_queue=dead_letter_queue,
            # Earlier versions stay, so that CodeDeploy (or an operator) can move the alias back.
            current_version_options=lambda_.VersionOptions(removal_policy=RemovalPolicy.RETAIN),
            # Lambda initialises each published version once and new environments resume from its
            # snapshot (README: SnapStart). It never applies to $LATEST, which nothing here invokes.
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snap_start else None,
        )
        if snap_start:
            # CDK warns that SnapStart needs published versions: every deployment publishes one
            # (current_version), and the alias below, the only thing callers invoke, points at it.
            Annotations.of(self.function).acknowledge_warning(
                SNAP_START_REQUIRES_PUBLISH_WARNING,
                "The live alias invokes the version each deployment publishes (current_version).",
            )
        self.alias = lambda_.Alias(
            self,
            "Alias",
            alias_name=LIVE_ALIAS,
            version=self.function.current_version,
            description="What callers invoke; deployments move it to the new version",
            # Asynchronous callers (the schedules): a failed run is kept in the dead-letter queue,
            # not retried; the next tick runs anyway.
            retry_attempts=0 if dead_letter_queue is not None else None,
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            f"The runtime is cdk.json's lambdaPythonVersion ({shared.config.lambda_python_version}): its "
            "bytecode must be compiled by the same minor Python, and the build machines have 3.11 to 3.13; "
            "choose a newer one where its Python builds the layer (README: The runtime and its bytecode).",
        )
        self._skip_checkov(
            reserved_concurrency, unreserved_reason, asynchronous=dead_letter_queue is not None
        )
        shared.token_secret.grant_read(self.role)
        shared.idempotency_table.grant(self.role, *IDEMPOTENCY_TABLE_ACTIONS)
        grant_tracking(self.role, shared.tracking_table, tracking_actions)
        grant_tracking_backlog(self.role, shared.tracking_backlog_queue, tracking_backlog_actions)
        grant_suppression(self.role, shared.suppression_table, suppression_actions)
        if event_bus is not None:
            event_bus.grant_put_events_to(self.role)  # events:PutEvents on this bus only
        if scheduled_sends is not None:
            scheduled_sends.grant_scheduling(self.role)
        if counts_usage:
            grant_usage(self.role, shared.usage_table)
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "Only the X-Ray statement (tracing ACTIVE) has Resource '*': xray:PutTraceSegments and "
            "xray:PutTelemetryRecords support no resource-level permissions.",
        )

    def _skip_checkov(
        self, reserved_concurrency: int | None, unreserved_reason: str, *, asynchronous: bool
    ) -> None:
        if not asynchronous:
            skip_checkov(
                self.function,
                "CKV_AWS_116",
                "A dead-letter queue for asynchronous invocations has nothing to catch: the API invokes the "
                "function synchronously, and failed queue records go to the queue's own dead-letter queue.",
            )
        skip_checkov(
            self.function,
            "CKV_AWS_117",
            "No VPC: the function reaches LiveAll on the internet and AWS APIs, nothing private; a VPC "
            "would need NAT gateways (cost, one more failure point) for no isolation gained.",
        )
        skip_checkov(
            self.function,
            "CKV_AWS_173",
            "The environment holds no secret (names, URLs and the token secret's ARN, never the token); "
            "Lambda encrypts it at rest with its AWS managed key.",
        )
        if reserved_concurrency is None:
            skip_checkov(self.function, "CKV_AWS_115", unreserved_reason)
