"""Names and defaults shared by the functions, the CDK stack and the local runner.

This module imports nothing outside the standard library: `infra/` and the
local runner import it without pulling in the Lambda dependencies.
"""

from __future__ import annotations

SERVICE_NAME = "viber-gateway"
STACK_NAME = "ViberGateway"

# Environment variables read by the functions (see gateway.settings).
ENV_PROVIDER_BASE_URL = "PROVIDER_BASE_URL"
ENV_PROVIDER_TOKEN_SECRET = "PROVIDER_TOKEN_SECRET"  # secret name or ARN
ENV_TOKEN_MAX_AGE_SECONDS = "TOKEN_MAX_AGE_SECONDS"
ENV_PROVIDER_CONNECT_TIMEOUT = "PROVIDER_CONNECT_TIMEOUT_SECONDS"
ENV_PROVIDER_READ_TIMEOUT = "PROVIDER_READ_TIMEOUT_SECONDS"
ENV_METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
ENV_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
ENV_IDEMPOTENCY_TABLE = "IDEMPOTENCY_TABLE"
# Where callers' numbers are from: their metadata is loaded before a SnapStart snapshot.
ENV_PRIME_COUNTRIES = "PRIME_COUNTRIES"
DEFAULT_PRIME_COUNTRIES = ("GR", "CY")

# Defaults. The production provider URL is only ever a deployment default;
# tests and the local runner always point at the sandbox.
PRODUCTION_PROVIDER_BASE_URL = "https://sms.liveall.eu/apiext/Sendout/"
DEFAULT_METRICS_NAMESPACE = "ViberGateway"
DEFAULT_TOKEN_MAX_AGE_SECONDS = 300
DEFAULT_PROVIDER_CONNECT_TIMEOUT_SECONDS = 3.0
DEFAULT_PROVIDER_READ_TIMEOUT_SECONDS = 15.0

# Resources. The stack and the local emulator create them under these names.
TOKEN_SECRET_NAME = "viber-gateway/provider-token"
QUEUE_NAME = "viber-gateway-messages"
DEAD_LETTER_QUEUE_NAME = "viber-gateway-messages-dlq"
IDEMPOTENCY_TABLE_NAME = "viber-gateway-idempotency"
IDEMPOTENCY_TTL_ATTRIBUTE = "expiration"

# Function and queue settings that depend on each other: the queue's
# visibility timeout must cover six times the function timeout (AWS guidance
# for event source mappings), and the API function must answer within API
# Gateway's 29 s integration limit.
API_FUNCTION_TIMEOUT_SECONDS = 28
QUEUE_FUNCTION_TIMEOUT_SECONDS = 60
QUEUE_VISIBILITY_TIMEOUT_SECONDS = 6 * QUEUE_FUNCTION_TIMEOUT_SECONDS
QUEUE_MAX_RECEIVE_COUNT = 5
DEAD_LETTER_RETENTION_DAYS = 14
QUEUE_BATCH_SIZE = 10
QUEUE_BATCH_WINDOW_SECONDS = 1
QUEUE_MAX_CONCURRENCY = 5

# Handler entry points, relative to functions/.
API_HANDLER = "api_handler.handler"
QUEUE_HANDLER = "queue_handler.handler"

# Custom metrics (gateway.observability emits them; the dashboard and alarms read them).
METRIC_MESSAGES_ACCEPTED = "MessagesAccepted"
METRIC_DESTINATIONS_SENT = "DestinationsSent"
METRIC_VALIDATION_FAILURES = "ValidationFailures"
METRIC_PROVIDER_ERRORS = "ProviderErrors"  # dimension: service (the alarm's metric)
METRIC_PROVIDER_ERRORS_BY_CODE = "ProviderErrorsByCode"  # dimensions: service, provider_code
METRIC_FAILURES = "Failures"  # dimensions: service, failure_type (a Failure slug)
# A send went out but the idempotency store did not keep its answer: a retry under the key is
# blocked from sending again, but cannot replay the answer. Alarmed.
METRIC_IDEMPOTENCY_STORE_FAILURES = "IdempotencyStoreFailures"

# More environment variables set by the stack.
ENV_LOG_LEVEL = "POWERTOOLS_LOG_LEVEL"
# Set on the queue function, with permission to send there, so that it can park
# permanent and uncertain failures in the dead-letter queue at once, with the
# reason (DESIGN.md), instead of after QUEUE_MAX_RECEIVE_COUNT receives.
ENV_DEAD_LETTER_QUEUE_URL = "DEAD_LETTER_QUEUE_URL"
# Set on the scheduled function: where the reconciler sends back a dead letter that proved not sent.
ENV_QUEUE_URL = "QUEUE_URL"

# Idempotency table key, as Powertools' DynamoDBPersistenceLayer expects by default.
IDEMPOTENCY_KEY_ATTRIBUTE = "id"

# Dimensions of the custom metrics above, and the failure_type values of
# METRIC_FAILURES: the slugs of gateway.failures.Failure (tests/infra checks
# they match), listed here so that the stack needs no Lambda dependencies.
METRIC_DIMENSION_SERVICE = "service"
METRIC_DIMENSION_FAILURE_TYPE = "failure_type"
FAILURE_TYPE_OUT_OF_CREDIT = "out-of-credit"  # has an alarm of its own
FAILURE_TYPES = (
    "malformed-request",
    "unsupported-media-type",
    "invalid-request",
    "rejected-by-provider",
    "misconfigured",
    FAILURE_TYPE_OUT_OF_CREDIT,
    "provider-failed",
    "provider-unavailable",
    "idempotency-key-reused",
    "in-progress",
    "outcome-unknown",
    "partially-sent",
    "not-found",
    "all-suppressed",
    "destination-not-allowed",
    "limit-exceeded",
    "spend-ceiling-reached",
    "scheduling-failed",
    "schedule-not-found",
    "schedule-not-cancellable",
    "internal-error",
)

# Idempotency (gateway.sending.idempotency). Explicit keys share this prefix across the API and the queue.
IDEMPOTENCY_KEY_PREFIX = "viber-gateway-send"
ENV_IDEMPOTENCY_WINDOW_SECONDS = "IDEMPOTENCY_WINDOW_SECONDS"
DEFAULT_IDEMPOTENCY_WINDOW_SECONDS = 24 * 60 * 60
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
IDEMPOTENCY_REPLAYED_HEADER = "Idempotent-Replayed"
QUEUE_IDEMPOTENCY_ATTRIBUTE = "IdempotencyKey"
QUEUE_IDEMPOTENCY_FIELD = "idempotency_key"

# Speed: long destination lists are split into provider requests of this size, sent
# concurrently; the records of one SQS batch are sent concurrently too. Both bounded,
# to protect the provider.
ENV_PROVIDER_CHUNK_SIZE = "PROVIDER_CHUNK_SIZE"
DEFAULT_PROVIDER_CHUNK_SIZE = 1000
ENV_PROVIDER_MAX_CONCURRENCY = "PROVIDER_MAX_CONCURRENCY"
DEFAULT_PROVIDER_MAX_CONCURRENCY = 4
ENV_QUEUE_RECORD_CONCURRENCY = "QUEUE_RECORD_CONCURRENCY"
DEFAULT_QUEUE_RECORD_CONCURRENCY = 10

# Function memory (and so CPU share). More for the API function: a faster cold start
# on the synchronous path.
API_FUNCTION_MEMORY_MB = 512
QUEUE_FUNCTION_MEMORY_MB = 256

# API Gateway's own answers (gateway responses) by response type: the status and title the
# stack gives their problem+json bodies, and the local front imitates. Every documented type
# is listed, so the DEFAULT_4XX/5XX fallbacks (whose status a template cannot know: gateway
# response templates are not VTL) only meet types AWS adds later.
API_GATEWAY_RESPONSES: dict[str, tuple[int, str]] = {
    "ACCESS_DENIED": (403, "Forbidden"),
    "API_CONFIGURATION_ERROR": (500, "Internal server error"),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, "Internal server error"),
    "AUTHORIZER_FAILURE": (500, "Internal server error"),
    "BAD_REQUEST_PARAMETERS": (400, "Bad Request"),
    "BAD_REQUEST_BODY": (400, "Bad Request"),
    "EXPIRED_TOKEN": (403, "Forbidden"),
    "INTEGRATION_FAILURE": (504, "Gateway Timeout"),
    "INTEGRATION_TIMEOUT": (504, "Gateway Timeout"),
    "INVALID_API_KEY": (403, "Forbidden"),
    "INVALID_SIGNATURE": (403, "Forbidden"),
    "MISSING_AUTHENTICATION_TOKEN": (403, "Forbidden"),
    "QUOTA_EXCEEDED": (429, "Too Many Requests"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long"),
    "RESOURCE_NOT_FOUND": (404, "Not Found"),
    "THROTTLED": (429, "Too Many Requests"),
    "UNAUTHORIZED": (401, "Unauthorized"),
    "UNSUPPORTED_MEDIA_TYPE": (415, "Unsupported Media Type"),
    "WAF_FILTERED": (403, "Forbidden"),
    # The Lambda function failed or answered what API Gateway cannot read: 502, its usual status.
    "DEFAULT_5XX": (502, "Bad Gateway"),
    "DEFAULT_4XX": (400, "Bad Request"),
}

# Delivery tracking (gateway.tracking, gateway.tracking.tracker, tracker_handler).
ENV_TRACKING_TABLE = "TRACKING_TABLE"  # unset: sends are not recorded for tracking
TRACKING_TABLE_NAME = "viber-gateway-tracking"
TRACKING_KEY_ATTRIBUTE = "id"
TRACKING_TTL_ATTRIBUTE = "expires_at"
# A sparse index of what the tracker still has to do: messages not final yet, and sends not yet
# taken in. Items leave it when their index attributes are removed.
TRACKING_OPEN_INDEX = "open"
TRACKING_OPEN_SHARD_ATTRIBUTE = "open_shard"
TRACKING_DUE_ATTRIBUTE = "due_at"
ENV_TRACKING_WINDOW_SECONDS = "TRACKING_WINDOW_SECONDS"
DEFAULT_TRACKING_WINDOW_SECONDS = 72 * 60 * 60
ENV_TRACKING_POLL_SECONDS = "TRACKING_POLL_SECONDS"
DEFAULT_TRACKING_POLL_SECONDS = 60  # the schedule's period (TRACKER_SCHEDULE_MINUTES)
ENV_STATUS_BATCH_SIZE = "STATUS_BATCH_SIZE"  # ids per GetSMSStatus call
DEFAULT_STATUS_BATCH_SIZE = 100
MAX_LOOKUP_IDS = 50  # GET /messages?smsid=...&smsid=...
# One scheduled function does the periodic work, a task per schedule: the event is {"task": ...}.
SCHEDULED_HANDLER = "scheduled_handler.handler"
SCHEDULED_FUNCTION_TIMEOUT_SECONDS = 120
SCHEDULED_FUNCTION_MEMORY_MB = 512
TASK_TRACK = "track"
TASK_RECONCILE = "reconcile"
TASK_CHECK_BALANCE = "check-balance"
TRACKER_SCHEDULE_MINUTES = 1
RECONCILE_SCHEDULE_MINUTES = 5
BALANCE_SCHEDULE_MINUTES = 15
# What each task's schedule runs at: {task: minutes}.
SCHEDULES = {
    TASK_TRACK: TRACKER_SCHEDULE_MINUTES,
    TASK_RECONCILE: RECONCILE_SCHEDULE_MINUTES,
    TASK_CHECK_BALANCE: BALANCE_SCHEDULE_MINUTES,
}

# Events (gateway.events): an EventBridge bus of the stack, one per stage.
ENV_EVENT_BUS_NAME = "EVENT_BUS_NAME"  # unset: no events are published
EVENT_BUS_NAME = "viber-gateway-events"
EVENT_SOURCE = "viber-gateway"
DETAIL_TYPE_MESSAGE_ACCEPTED = "Message Accepted"
DETAIL_TYPE_STATUS_CHANGED = "Message Status Changed"
DETAIL_TYPE_TRACKING_ENDED = "Message Tracking Ended"
DETAIL_TYPE_BALANCE_LOW = "Balance Low"
DETAIL_TYPE_OUTCOME_RESOLVED = "Send Outcome Resolved"

# Tracker metrics (the dashboard and alarms read them).
METRIC_MESSAGES_POLLED = "MessagesPolled"
METRIC_STATUS_CHANGES = "StatusChanges"
METRIC_TRACKER_PROVIDER_CALLS = "TrackerProviderCalls"
METRIC_OLDEST_OPEN_MESSAGE_AGE = "OldestOpenMessageAgeSeconds"
METRIC_TRACKING_BACKLOG = "TrackingBacklog"  # messages a run had no time for: alarmed when it lasts
METRIC_TRACKING_RECORD_FAILURES = "TrackingRecordFailures"
METRIC_EVENTS_NOT_PUBLISHED = "EventsNotPublished"

# The account's balance (gateway.account): a metric, an alarm and an event below a threshold.
METRIC_BALANCE = "AccountBalanceEuros"
ENV_LOW_BALANCE_EUROS = "LOW_BALANCE_EUROS"  # unset: no Balance Low event

# Reconciliation of uncertain sends (gateway.reconciliation.reconciler).
METRIC_UNKNOWN_RESOLVED = "OutcomesResolved"  # dimension: outcome (sent / not-sent)
METRIC_UNRESOLVED_AMBIGUOUS = "AmbiguousOutcomes"  # open ambiguous cases after a run: alarmed
ENV_RECONCILE_GRACE_SECONDS = "RECONCILE_GRACE_SECONDS"
DEFAULT_RECONCILE_GRACE_SECONDS = 10 * 60
ENV_RECONCILE_SKEW_SECONDS = "RECONCILE_SKEW_SECONDS"
DEFAULT_RECONCILE_SKEW_SECONDS = 30

# The suppression list (gateway.suppression): numbers that must not be messaged.
ENV_SUPPRESSION_TABLE = "SUPPRESSION_TABLE"  # unset: no list, every send goes to every number
SUPPRESSION_TABLE_NAME = "viber-gateway-suppressions"
SUPPRESSION_KEY_ATTRIBUTE = "pk"  # entry#<number> or bucket#<n>
SUPPRESSION_SORT_ATTRIBUTE = "sk"  # the entry's scope, or "members" for a bucket
SUPPRESSION_TTL_ATTRIBUTE = "expires_at"  # entries with an expiry; DynamoDB removes them after it
# The send path reads the list by bucket: one item per bucket holds what a send needs to know of
# every entry in it, so a send of one number reads one item and one of 10,000 a few calls.
SUPPRESSION_BUCKETS = 512
# Delivery tracking suppresses a number whose messages failed for good this many times in a row
# (0: never). Context key autoSuppressAfterFailures.
ENV_AUTO_SUPPRESS_AFTER_FAILURES = "AUTO_SUPPRESS_AFTER_FAILURES"
DEFAULT_AUTO_SUPPRESS_AFTER_FAILURES = 3
DETAIL_TYPE_DESTINATION_SUPPRESSED = "Destination Suppressed"
DETAIL_TYPE_SUPPRESSION_REMOVED = "Suppression Removed"
METRIC_SUPPRESSED_DESTINATIONS = "SuppressedDestinations"  # destinations a send left out
MAX_SUPPRESSION_IMPORT = 10_000

# Scheduled sends and send windows (gateway.schedules). A request with send_at, or whose
# recipients' send window is closed, becomes a schedule: one item in the schedules table,
# with a part per time it goes out (a window splits a bulk send by the recipients' zones).
ENV_SCHEDULE_TABLE = "SCHEDULE_TABLE"  # unset: send_at and windows are refused as misconfigured
SCHEDULE_TABLE_NAME = "viber-gateway-schedules"
SCHEDULE_KEY_ATTRIBUTE = "id"
SCHEDULE_TTL_ATTRIBUTE = "expires_at"
# GET /schedules reads this index: partition = the month (UTC, "2026-12") of the schedule's first
# part, sort = "<first part's fire time, ISO UTC>#<id>", so a time range is a few queries in order.
SCHEDULE_LIST_INDEX = "by_time"
SCHEDULE_LIST_PARTITION_ATTRIBUTE = "month"
SCHEDULE_LIST_SORT_ATTRIBUTE = "fires"
# A schedule's item outlives its last part by this long, then DynamoDB removes it.
SCHEDULE_RETENTION_DAYS = 30
# The engine: EventBridge Scheduler one-time schedules in this group, each with the trigger
# queue as target. A part due sooner than SCHEDULE_DIRECT_SECONDS goes to that queue directly,
# with a delay (Scheduler's precision is a minute, and an at() time must not be past when made).
ENV_SCHEDULE_GROUP = "SCHEDULE_GROUP"
SCHEDULE_GROUP_NAME = "viber-gateway"
ENV_SCHEDULE_QUEUE_URL = "SCHEDULE_QUEUE_URL"
ENV_SCHEDULE_QUEUE_ARN = "SCHEDULE_QUEUE_ARN"  # the queue function tells triggers by their source
SCHEDULE_QUEUE_NAME = "viber-gateway-schedule-triggers"
SCHEDULE_DEAD_LETTER_QUEUE_NAME = "viber-gateway-schedule-triggers-dlq"
ENV_SCHEDULER_ROLE_ARN = "SCHEDULER_ROLE_ARN"  # the role Scheduler assumes to send a trigger
ENV_SCHEDULER_DEAD_LETTER_ARN = "SCHEDULER_DEAD_LETTER_ARN"  # where Scheduler puts triggers it cannot deliver
SCHEDULE_DIRECT_SECONDS = 60
SCHEDULER_MAX_EVENT_AGE_SECONDS = 6 * 60 * 60  # Scheduler retries delivering a trigger this long
SCHEDULER_MAX_RETRY_ATTEMPTS = 185
# How far ahead send_at may be (context key scheduleHorizonDays).
ENV_SCHEDULE_HORIZON_DAYS = "SCHEDULE_HORIZON_DAYS"
DEFAULT_SCHEDULE_HORIZON_DAYS = 30
MAX_SCHEDULE_HORIZON_DAYS = 365
# The stage's default send window, JSON ({"from": "09:00", "to": "21:00", "days": ["mon", ...]});
# unset: no window unless a request gives one (context key sendWindow).
ENV_SEND_WINDOW = "SEND_WINDOW"
# make run only: the schedules' clock runs this many times faster than the wall clock, from
# CLOCK_ORIGIN (epoch seconds), so that windows and send_at can be tried without waiting.
ENV_CLOCK_SCALE = "CLOCK_SCALE"
ENV_CLOCK_ORIGIN = "CLOCK_ORIGIN"
SCHEDULE_TRIGGER_FIELD = "schedule_trigger"  # a trigger's body: {"schedule_trigger": {"id", "part"}}
DETAIL_TYPE_SEND_SCHEDULED = "Send Scheduled"
DETAIL_TYPE_SCHEDULE_CANCELLED = "Scheduled Send Cancelled"
METRIC_SCHEDULES_CREATED = "SchedulesCreated"
METRIC_SCHEDULED_PARTS_FIRED = "ScheduledPartsFired"  # dimension: outcome (sent / failed / skipped)
MAX_SCHEDULE_LIST_LIMIT = 100

# Other systems' envelopes on the queue (gateway.sending.envelopes): an SNS notification (raw
# delivery off) or an EventBridge event (a rule with the queue as target) carrying our JSON is
# unwrapped; without a key of its own, the envelope's id is its idempotency identity.
SNS_NOTIFICATION_TYPE = "Notification"
# Context keys snsSources / eventSources (infra): the topics subscribed to the queue, the rules
# made on named buses with the queue as target; the queue policy allows exactly those.

# Status webhooks (context key webhooks): EventBridge API destinations POST the events of the
# stage's bus, as published, to HTTPS endpoints outside AWS, with the endpoint's own
# authentication (an API key header or basic auth, kept in Secrets Manager).
WEBHOOK_DEAD_LETTER_QUEUE_NAME = "viber-gateway-webhooks-dlq"
WEBHOOK_MAX_EVENT_AGE_SECONDS = 24 * 60 * 60
WEBHOOK_MAX_RETRY_ATTEMPTS = 185
DEFAULT_WEBHOOK_RATE_PER_SECOND = 10

# Tracking records a send could not write (the table failed) wait on this queue until the
# tracker writes them: their events come late, never not at all.
ENV_TRACKING_BACKLOG_QUEUE_URL = "TRACKING_BACKLOG_QUEUE_URL"
TRACKING_BACKLOG_QUEUE_NAME = "viber-gateway-tracking-backlog"
TRACKING_BACKLOG_RETENTION_DAYS = 14
METRIC_TRACKING_RECORDS_KEPT = "TrackingRecordsKept"  # sent, kept on the backlog queue for the tracker

# The destination policy (gateway.guard.policy): the countries numbers may belong to (ISO 3166,
# comma-separated, or * for any) and the kinds of number that may be messaged. Unset: no check
# (the stack and make run always set them; context keys allowedCountries, allowedNumberTypes).
ENV_ALLOWED_COUNTRIES = "ALLOWED_COUNTRIES"
ENV_ALLOWED_NUMBER_TYPES = "ALLOWED_NUMBER_TYPES"
DEFAULT_ALLOWED_COUNTRIES = ("GR", "CY")
DEFAULT_ALLOWED_NUMBER_TYPES = ("mobile", "fixed-line-or-mobile")
# phonenumbers' kinds of number, by the names the context key and the answers use.
NUMBER_TYPES = (
    "mobile",
    "fixed-line",
    "fixed-line-or-mobile",
    "toll-free",
    "premium-rate",
    "shared-cost",
    "voip",
    "personal-number",
    "pager",
    "uan",
    "voicemail",
    "unknown",
)
METRIC_POLICY_REFUSALS = "PolicyRefusals"  # dimension: rule (country / number-type)

# Caps (gateway.guard.caps): per caller (an API key; the queue and other sources share one
# bucket) a daily limit of messages and of worst-case SMS cost, and a stage-wide daily spend
# ceiling, counted atomically in the usage table. The day is the stage's (STAGE_TIME_ZONE).
ENV_USAGE_TABLE = "USAGE_TABLE"  # unset: nothing is counted, nothing capped
USAGE_TABLE_NAME = "viber-gateway-usage"
USAGE_KEY_ATTRIBUTE = "pk"  # limits#<caller>; usage#<day> (the day's spend, each caller's counts)
USAGE_TTL_ATTRIBUTE = "expires_at"
ENV_DAILY_MESSAGE_LIMIT = "DAILY_MESSAGE_LIMIT"  # per caller, unless its limits item says otherwise
ENV_DAILY_COST_LIMIT_EUROS = "DAILY_COST_LIMIT_EUROS"
ENV_DAILY_SPEND_CEILING_EUROS = "DAILY_SPEND_CEILING_EUROS"  # the whole stage
ENV_STAGE_TIME_ZONE = "STAGE_TIME_ZONE"
DEFAULT_STAGE_TIME_ZONE = "Europe/Athens"
QUEUE_CALLER = "queue"  # the bucket of the queue and every other source (SNS, EventBridge, schedules)
# What an SMS is taken to cost where LiveAll's balance does not say (euros): above every price of
# its list, so a cap errs on the safe side.
UNKNOWN_SMS_PRICE_EUROS = "0.10"
DETAIL_TYPE_SPEND_CEILING_REACHED = "Spend Ceiling Reached"
METRIC_CAP_REFUSALS = "CapRefusals"  # dimension: rule (messages / cost / spend-ceiling)
METRIC_MESSAGES_COUNTED = "MessagesCounted"  # dimension: caller
METRIC_DAY_SPEND = "DaySpendEuros"  # the stage's worst-case spend so far today
METRIC_SPEND_CEILING_REACHED = "SpendCeilingReached"  # once a day at most: alarmed
