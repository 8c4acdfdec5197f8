"""The DynamoDB tables: idempotency records, delivery tracking, the suppression list."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from gateway import names
from infra.config import GatewayConfig
from infra.nag import skip_checkov


class IdempotencyStore(Construct):
    """On-demand table keyed by `id` (string), items expiring on the TTL attribute."""

    def __init__(self, scope: Construct, construct_id: str, *, config: GatewayConfig) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            table_name=config.physical_name(names.IDEMPOTENCY_TABLE_NAME),
            partition_key=dynamodb.Attribute(
                name=names.IDEMPOTENCY_KEY_ATTRIBUTE, type=dynamodb.AttributeType.STRING
            ),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=names.IDEMPOTENCY_TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            # Records expire (TTL) after the idempotency window, a day by default, and
            # only matter while a request may be retried; a retained table would
            # block re-creating the stack (its name is fixed).
            removal_policy=RemovalPolicy.DESTROY,
        )
        skip_checkov(
            self.table,
            "CKV_AWS_119",
            "Encrypted at rest with the AWS managed key aws/dynamodb; the records are replays of answers "
            "(provider message ids) kept a day, readable only by the two function roles; a customer "
            "managed key would add cost and a key policy without narrowing who reads them.",
        )


class TrackingTable(Construct):
    """What the gateway keeps of its sends (gateway.tracking): messages being tracked, sends whose
    outcome is unknown, answers waiting to be saved, the scheduled tasks' leases and state.

    Keyed by `id`, items expiring on the TTL attribute (a week after a message's tracking
    window), with the sparse index `open` of the work still to do (sharded by `open_shard`,
    ordered by `due_at`). Point-in-time recovery: the unknown outcomes it holds are what the
    reconciler needs to tell a caller whether a message went out.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: GatewayConfig) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            table_name=config.physical_name(names.TRACKING_TABLE_NAME),
            partition_key=dynamodb.Attribute(
                name=names.TRACKING_KEY_ATTRIBUTE, type=dynamodb.AttributeType.STRING
            ),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=names.TRACKING_TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            # As the idempotency table: a fixed name, so a retained table would block re-creating
            # the stack; deleting it leaves DynamoDB's backup of it for 35 days (PITR).
            removal_policy=RemovalPolicy.DESTROY,
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
        skip_checkov(
            self.table,
            "CKV_AWS_119",
            "Encrypted at rest with the AWS managed key aws/dynamodb; it holds the account's own message "
            "ids, numbers and references, readable only by the three function roles; a customer managed "
            "key would add cost and a key policy without narrowing who reads them.",
        )


class SuppressionTable(Construct):
    """The suppression list (gateway.suppression): numbers that must not be messaged, each with its
    scope and reason, and the buckets the send path reads them by.

    Keyed by `pk` and `sk` (strings), entries with an expiry removed by TTL; no index (the list's
    API scans it, sends read buckets by key). Point-in-time recovery: the list is what operators
    and delivery tracking decided, not something the gateway could rebuild.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: GatewayConfig) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            table_name=config.physical_name(names.SUPPRESSION_TABLE_NAME),
            partition_key=dynamodb.Attribute(
                name=names.SUPPRESSION_KEY_ATTRIBUTE, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(
                name=names.SUPPRESSION_SORT_ATTRIBUTE, type=dynamodb.AttributeType.STRING
            ),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=names.SUPPRESSION_TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            # As the other tables: a fixed name, so a retained table would block re-creating the
            # stack; deleting it leaves DynamoDB's backup of it for 35 days (PITR), from which a
            # new stage's list can be restored (README: What cdk destroy keeps).
            removal_policy=RemovalPolicy.DESTROY,
        )
        skip_checkov(
            self.table,
            "CKV_AWS_119",
            "Encrypted at rest with the AWS managed key aws/dynamodb; it holds phone numbers and why they "
            "must not be messaged, readable only by the three function roles; a customer managed key would "
            "add cost and a key policy without narrowing who reads them.",
        )
