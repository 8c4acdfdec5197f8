"""The stage's EventBridge bus: what the gateway tells other systems (README: Delivery events)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from constructs import Construct

from gateway import names
from infra.config import GatewayConfig

# Consumers that were down can replay what they missed from the archive (EventBridge StartReplay).
EVENT_ARCHIVE_DAYS = 7


class EventBus(Construct):
    """The stage's bus (`viber-gateway-events-<stage>`), source `viber-gateway`, archived for replay.

    The scheduled function publishes Message Accepted, Status Changed, Tracking Ended, Send
    Outcome Resolved, Balance Low and Destination Suppressed (delivery tracking); the API
    function Destination Suppressed and Suppression Removed (the suppression list's routes); the
    API and queue functions Send Scheduled, the API function Scheduled Send Cancelled.
    Each publisher is given the bus (GatewayFunction's `event_bus`): its name, and PutEvents
    on it alone.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: GatewayConfig) -> None:
        super().__init__(scope, construct_id)
        # The name as a string (the bus's own attribute is a token): metrics' EventBusName dimension.
        self.bus_name = config.physical_name(names.EVENT_BUS_NAME)
        self.bus = events.EventBus(
            self,
            "Bus",
            event_bus_name=self.bus_name,
            description=f"{names.SERVICE_NAME} ({config.stage}): delivery events (README: Delivery events)",
        )
        self.archive = self.bus.archive(
            "Archive",
            archive_name=config.physical_name(names.EVENT_BUS_NAME),
            description="Every event of the gateway, for consumers to replay what they missed",
            event_pattern=events.EventPattern(source=[names.EVENT_SOURCE]),
            retention=Duration.days(EVENT_ARCHIVE_DAYS),
        )
