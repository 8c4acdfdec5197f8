"""The DynamoDB tables: idempotency records, delivery tracking (and its backlog queue), the
suppression list, the caps' usage counters."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from gateway import names
from infra.config import GatewayConfig
from infra.nag import acknowledge, skip_checkov

STRING = dynamodb.AttributeType.STRING


def gateway_table(
    scope: Construct,
    *,
    name: str,
    key: str,
    ttl_attribute: str,
    holds: str,
    config: GatewayConfig,
    sort_key: str | None = None,
) -> dynamodb.Table:
    """A table of the gateway, made as every one of them is: on demand, string keys, a TTL
    attribute, point-in-time recovery, the AWS managed key, and deleted with the stack (its name
    is fixed, so a retained table would block re-creating the stack; DynamoDB keeps a backup of it
    35 days after, from PITR). `holds` says what is in it, for the checkov exemption's reason."""
    table = dynamodb.Table(
        scope,
        "Table",
        table_name=config.physical_name(name),
        partition_key=dynamodb.Attribute(name=key, type=STRING),
        sort_key=None if sort_key is None else dynamodb.Attribute(name=sort_key, type=STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        time_to_live_attribute=ttl_attribute,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        removal_policy=RemovalPolicy.DESTROY,
    )
    skip_checkov(
        table,
        "CKV_AWS_119",
        f"Encrypted at rest with the AWS managed key aws/dynamodb; it holds {holds}; a customer managed "
        "key would add cost and a key policy without narrowing who reads them.",
    )
    return table


class IdempotencyStore(Construct):
    """On-demand table keyed by `id` (string), items expiring on the TTL attribute."""

    def __init__(self, scope: Construct, construct_id: str, *, config: GatewayConfig) -> None:
        super().__init__(scope, construct_id)
        # Records expire (TTL) after the idempotency window, a day by default, and only matter while
        # a request may be retried.
        self.table = gateway_table(
            self,
            name=names.IDEMPOTENCY_TABLE_NAME,
            key=names.IDEMPOTENCY_KEY_ATTRIBUTE,
            ttl_attribute=names.IDEMPOTENCY_TTL_ATTRIBUTE,
            holds="replays of answers (provider message ids) kept a day, readable only by the function roles",
            config=config,
        )


class TrackingTable(Construct):
    """What the gateway keeps of its sends (gateway.tracking): messages being tracked, sends whose
    outcome is unknown, answers waiting to be saved, the scheduled tasks' leases and state.

    Keyed by `id`, items expiring on the TTL attribute (a week after a message's tracking
    window), with the sparse index `open` of the work still to do (sharded by `open_shard`,
    ordered by `due_at`). Point-in-time recovery: the unknown outcomes it holds are what the
    reconciler needs to tell a caller whether a message went out.

    Its backlog queue (`backlog_queue`, SSE, TLS only, 14 days) keeps the tracking records of sends
    that went out while the table refused them: the API and queue functions send them there, the
    scheduled function (the tracker) writes them to the table and deletes them. In a protected stage
    it outlives the stack, as the message queue does: those records are the only trace of their sends.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: GatewayConfig) -> None:
        super().__init__(scope, construct_id)
        self.table = gateway_table(
            self,
            name=names.TRACKING_TABLE_NAME,
            key=names.TRACKING_KEY_ATTRIBUTE,
            ttl_attribute=names.TRACKING_TTL_ATTRIBUTE,
            holds="the account's own message ids, numbers and references, readable only by the three "
            "function roles",
            config=config,
        )
        self.table.add_global_secondary_index(
            index_name=names.TRACKING_OPEN_INDEX,
            partition_key=dynamodb.Attribute(
                name=names.TRACKING_OPEN_SHARD_ATTRIBUTE, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(
                name=names.TRACKING_DUE_ATTRIBUTE, type=dynamodb.AttributeType.NUMBER
            ),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        self.backlog_queue = self._create_backlog_queue(config)

    def _create_backlog_queue(self, config: GatewayConfig) -> sqs.Queue:
        queue = sqs.Queue(
            self,
            "BacklogQueue",
            queue_name=config.physical_name(names.TRACKING_BACKLOG_QUEUE_NAME),
            retention_period=Duration.days(names.TRACKING_BACKLOG_RETENTION_DAYS),
            # A record the tracker received stays hidden while its run lasts.
            visibility_timeout=Duration.seconds(names.SCHEDULED_FUNCTION_TIMEOUT_SECONDS),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # As the message queue: a retained queue keeps its name (README: What cdk destroy keeps).
            removal_policy=RemovalPolicy.RETAIN if config.protected else RemovalPolicy.DESTROY,
        )
        acknowledge(
            queue,
            "AwsSolutions-SQS3",
            "A record waits here until the tracking table takes it: a dead-letter queue would move records "
            "aside after some receives, exactly while the table keeps failing; the age alarm "
            "(tracking-backlog-queue-age) calls an operator instead.",
        )
        skip_checkov(
            queue,
            "CKV_AWS_27",
            "Encrypted at rest with SQS-managed keys (SqsManagedSseEnabled), which checkov does not "
            "recognise; only the three function roles use it, and a KMS key would add a key policy for them.",
        )
        return queue


class SuppressionTable(Construct):
    """The suppression list (gateway.suppression): numbers that must not be messaged, each with its
    scope and reason, and the buckets the send path reads them by.

    Keyed by `pk` and `sk` (strings), entries with an expiry removed by TTL; no index (the list's
    API scans it, sends read buckets by key). Point-in-time recovery: the list is what operators
    and delivery tracking decided, not something the gateway could rebuild.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: GatewayConfig) -> None:
        super().__init__(scope, construct_id)
        # Deleted with the stack: a new stage's list can be restored from the backup (README: What
        # cdk destroy keeps).
        self.table = gateway_table(
            self,
            name=names.SUPPRESSION_TABLE_NAME,
            key=names.SUPPRESSION_KEY_ATTRIBUTE,
            sort_key=names.SUPPRESSION_SORT_ATTRIBUTE,
            ttl_attribute=names.SUPPRESSION_TTL_ATTRIBUTE,
            holds="phone numbers and why they must not be messaged, readable only by the three function "
            "roles",
            config=config,
        )


class UsageTable(Construct):
    """The caps' counters (gateway.guard.caps): each caller's limits (`limits#<caller>`, set by
    operators), and each of the stage's days (`usage#<day>`: the day's worst-case spend, brake
    reported, brake lifted, and each caller's messages and cost, counted in one update).

    Keyed by `pk` (string), no sort key and no index; a day's items expire on the TTL attribute
    weeks after the day. Point-in-time recovery: the limits items are operators' decisions.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: GatewayConfig) -> None:
        super().__init__(scope, construct_id)
        self.table = gateway_table(
            self,
            name=names.USAGE_TABLE_NAME,
            key=names.USAGE_KEY_ATTRIBUTE,
            ttl_attribute=names.USAGE_TTL_ATTRIBUTE,
            holds="counts, euros and API key ids (never keys or numbers), readable only by the API and "
            "queue function roles",
            config=config,
        )
