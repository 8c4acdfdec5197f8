"""Scheduled sends (gateway.schedules): the schedules table, the trigger queue and its dead-letter
queue, the stage's EventBridge Scheduler group, and the role Scheduler sends triggers with."""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from gateway import names
from infra.components.storage import gateway_table
from infra.config import GatewayConfig
from infra.nag import acknowledge, skip_checkov

SCHEDULER_SERVICE = "scheduler.amazonaws.com"
# What the API and queue functions do with the schedules table (gateway.schedules.store): read,
# create and change a schedule's item (conditional writes), remove one whose triggers could not all
# be placed; Query on the `by_time` index only (GET /schedules).
SCHEDULE_ITEM_ACTIONS = ("dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem")
SCHEDULE_INDEX_ACTIONS = ("dynamodb:Query",)
# One-time schedules in the stage's group: created per part, deleted on cancel (Scheduler deletes
# the ones that fired itself: ActionAfterCompletion DELETE).
SCHEDULER_ACTIONS = ("scheduler:CreateSchedule", "scheduler:DeleteSchedule")
# Triggers wait at most this long on the queue (as queued messages do); the dead-letter queue
# keeps them longer (SQS counts a message's age from its first enqueue).
TRIGGER_RETENTION = Duration.days(4)


class ScheduledSends(Construct):
    """What a send with `send_at` (or outside its send window) needs until it goes out.

    - The schedules table: one item per schedule, keyed by `id`, with the `by_time` index that
      GET /schedules reads (partition `month`, sort `fires`), expiring by TTL a while after its
      last part. On demand, point-in-time recovery, deleted with the stack like the other tables
      (a fixed name; DynamoDB keeps a backup 35 days).
    - The trigger queue, which each part's one-time schedule sends `{"schedule_trigger": ...}` to
      (or a function directly, with a delay, for parts due within a minute), consumed by the
      queue function. It redrives to its dead-letter queue, which is also where Scheduler puts a
      trigger it could not deliver. In a protected stage both outlive the stack.
    - The schedule group `viber-gateway-<stage>`: deleting the stack deletes it with the
      schedules still pending (as it deletes the table they belong to).
    - The execution role Scheduler assumes, for this account's schedules of this group only,
      allowed nothing but sqs:SendMessage on the trigger queue and its dead-letter queue.

    Functions that schedule are given this construct (GatewayFunction's `scheduled_sends`):
    `environment()` tells them where everything is, `grant_scheduling()` lets them use it.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: GatewayConfig) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self.table = self._create_table(config)
        self.dead_letter_queue, self.trigger_queue = self._create_queues(config)

        self.group_name = config.physical_name(names.SCHEDULE_GROUP_NAME)
        self.group = scheduler.CfnScheduleGroup(self, "Group", name=self.group_name)
        stack = Stack.of(self)
        self.group_arn = stack.format_arn(
            service="scheduler",
            resource="schedule-group",
            resource_name=self.group_name,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        # Every schedule of the group: arn:<partition>:scheduler:<region>:<account>:schedule/<group>/<name>
        self.schedules_arn = stack.format_arn(
            service="scheduler",
            resource="schedule",
            resource_name=f"{self.group_name}/*",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        self.scheduler_role = self._create_scheduler_role(config)

    def _create_table(self, config: GatewayConfig) -> dynamodb.Table:
        table = gateway_table(
            self,
            name=names.SCHEDULE_TABLE_NAME,
            key=names.SCHEDULE_KEY_ATTRIBUTE,
            ttl_attribute=names.SCHEDULE_TTL_ATTRIBUTE,
            holds="scheduled requests (numbers, texts) until they go out, readable only by the API and queue "
            "function roles",
            config=config,
        )
        table.add_global_secondary_index(
            index_name=names.SCHEDULE_LIST_INDEX,
            partition_key=dynamodb.Attribute(
                name=names.SCHEDULE_LIST_PARTITION_ATTRIBUTE, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(
                name=names.SCHEDULE_LIST_SORT_ATTRIBUTE, type=dynamodb.AttributeType.STRING
            ),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        return table

    def _create_queues(self, config: GatewayConfig) -> tuple[sqs.Queue, sqs.Queue]:
        # As the message queue: retained queues keep their names, and a protected stage never loses
        # a waiting trigger (README: What cdk destroy keeps).
        removal_policy = RemovalPolicy.RETAIN if config.protected else RemovalPolicy.DESTROY
        dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=config.physical_name(names.SCHEDULE_DEAD_LETTER_QUEUE_NAME),
            retention_period=Duration.days(names.DEAD_LETTER_RETENTION_DAYS),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            removal_policy=removal_policy,
        )
        trigger_queue = sqs.Queue(
            self,
            "TriggerQueue",
            queue_name=config.physical_name(names.SCHEDULE_QUEUE_NAME),
            # Firing a part is a send: the same function, timeout and retries as a queued message.
            visibility_timeout=Duration.seconds(names.QUEUE_VISIBILITY_TIMEOUT_SECONDS),
            retention_period=TRIGGER_RETENTION,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=dead_letter_queue, max_receive_count=names.QUEUE_MAX_RECEIVE_COUNT
            ),
            removal_policy=removal_policy,
        )
        for queue in (trigger_queue, dead_letter_queue):
            skip_checkov(
                queue,
                "CKV_AWS_27",
                "Encrypted at rest with SQS-managed keys (SqsManagedSseEnabled), which checkov does not "
                "recognise; a KMS key would need a key policy for EventBridge Scheduler's role as well.",
            )
        return dead_letter_queue, trigger_queue

    def _create_scheduler_role(self, config: GatewayConfig) -> iam.Role:
        # Confused-deputy protection: Scheduler may assume the role for this account's schedules of
        # this group only. AWS's guide names the group's ARN as aws:SourceArn (earlier editions the
        # group's schedules, schedule/<group>/*): both are accepted, neither reaches another group.
        role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                SCHEDULER_SERVICE,
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": [self.group_arn, self.schedules_arn]},
                },
            ),
            description=f"{names.SERVICE_NAME} {config.stage}: EventBridge Scheduler sends schedule triggers",
        )
        # A trigger to the trigger queue, and (with the same role) one it could not deliver to the
        # dead-letter queue (AWS: the execution role needs sqs:SendMessage on the DLQ). Nothing else.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["sqs:SendMessage"],
                resources=[self.trigger_queue.queue_arn, self.dead_letter_queue.queue_arn],
            )
        )
        return role

    def environment(self) -> dict[str, str]:
        """Where a scheduling function finds the table, the group, the queues and the role, and the
        stage's horizon and default send window (absent: none)."""
        environment = {
            names.ENV_SCHEDULE_TABLE: self.table.table_name,
            # A reference, so that no function runs before the group exists.
            names.ENV_SCHEDULE_GROUP: self.group.ref,
            names.ENV_SCHEDULE_QUEUE_URL: self.trigger_queue.queue_url,
            names.ENV_SCHEDULE_QUEUE_ARN: self.trigger_queue.queue_arn,
            names.ENV_SCHEDULER_ROLE_ARN: self.scheduler_role.role_arn,
            names.ENV_SCHEDULER_DEAD_LETTER_ARN: self.dead_letter_queue.queue_arn,
            names.ENV_SCHEDULE_HORIZON_DAYS: str(self._config.schedule_horizon_days),
        }
        if self._config.send_window is not None:
            environment[names.ENV_SEND_WINDOW] = self._config.send_window.to_json()
        return environment

    def grant_scheduling(self, role: iam.IRole) -> None:
        """Let `role` keep schedules: their items (and GET /schedules' index), one-time schedules in
        the group, handing Scheduler its role, and sending a part due within a minute directly."""
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(SCHEDULE_ITEM_ACTIONS), resources=[self.table.table_arn])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=list(SCHEDULE_INDEX_ACTIONS),
                resources=[f"{self.table.table_arn}/index/{names.SCHEDULE_LIST_INDEX}"],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(SCHEDULER_ACTIONS), resources=[self.schedules_arn])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.scheduler_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": SCHEDULER_SERVICE}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.trigger_queue.queue_arn])
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{self.nag_schedules_arn}]",
            "Schedules are created at run time, one per part (<schedule id>-<part>): their names cannot be "
            "known, and the ARN is narrowed to the stage's own schedule group.",
        )

    @property
    def nag_schedules_arn(self) -> str:
        """The schedules' ARN as cdk-nag spells it in a finding (pseudo parameters in <>)."""
        return f"arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/{self.group_name}/*"
