"""Priming before a SnapStart snapshot, and what a restored process must not share.

Before the snapshot (`prime_api`, `prime_queue`): everything a first request
would do the same way for every request, so that no restored environment does
it again: the modules a request needs, the request rules with one validation of
a representative request, phone number metadata of the countries callers use
(PRIME_COUNTRIES) and the destination policy's patterns for them, the sender with
its boto3 clients, the caps where the stage counts, and one call of each AWS
operation the request path makes, stopped before it is signed or sent (the
serializers and endpoint rules load, nothing reaches AWS). Nothing here calls
LiveAll, reads the token or writes anything.

After the restore (`forget_environment`): the token cache is empty, no
connection is carried over, and the random generator is reseeded, so no two
environments restored from one snapshot share what must differ.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
from typing import Any

import phonenumbers
from botocore import xform_name
from botocore.awsrequest import AWSResponse

from gateway import names
from gateway.aws import close_connections
from gateway.observability import logger, tracing_enabled
from gateway.phone import normalise
from gateway.provider.client import POOL
from gateway.settings import SettingsError, get_settings

# A request every rule accepts, shaped as callers send it (separators, a duplicate).
SAMPLE_BODY: dict[str, Any] = {
    "im_type": "IM_SMSFB",
    "im_sender_name": "Priming",
    "im_text": "Priming the request rules before the snapshot.",
    "destinations": ["+30 691 234 5678", "306912345678"],
    "im_image_urls": ["https://example.com/offer.png"],
    "im_actions": [{"caption": "See it", "url": "https://example.com/offer"}],
    "senderid": "Priming",
    "sms_text": "Priming the request rules.",
    "reference": "priming",
}


def sample_event(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """A REST proxy event of API Gateway's shape, as a caller's POST would arrive."""
    import json

    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    return {
        "resource": path,
        "path": path,
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "requestContext": {"requestId": "priming", "resourcePath": path, "httpMethod": "POST"},
        "body": json.dumps(SAMPLE_BODY if body is None else body),
        "isBase64Encoded": False,
    }


class PrimingContext:
    """Enough of a Lambda context for the resolver, with all the time in the world."""

    function_name = "priming"
    memory_limit_in_mb = names.API_FUNCTION_MEMORY_MB
    invoked_function_arn = "arn:aws:lambda:::function:priming"
    aws_request_id = "priming"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def prime_api(
    *,
    parse: Callable[[dict[str, Any]], Any],
    resolve: Callable[[dict[str, Any], Any], dict[str, Any]],
) -> None:
    """The API function: the send's own path, then the resolver with a preview (which sends nothing)."""
    with _priming("api") as settings:
        if settings is None:
            return
        parse(sample_event("/messages"))
        sender = _prime_sender(settings)
        # A Viber-only preview asks LiveAll for no price, and its look at the suppression list is
        # answered here: the resolver, its validation and the preview's code run, nothing leaves.
        preview = sample_event("/messages/preview", {**SAMPLE_BODY, "im_type": "IM"})
        with _answered_here(sender.suppression.client if sender.suppression is not None else None):
            answer = resolve(preview, PrimingContext())
        if answer.get("statusCode") != 200:
            logger.warning("priming: the preview answered", extra={"status": answer.get("statusCode")})


def prime_queue(*, parse: Callable[[str], Any]) -> None:
    """The queue function: a record's parse, the sender, the idempotency store and the dead letters."""
    import json

    with _priming("queue") as settings:
        if settings is None:
            return
        parse(json.dumps({**SAMPLE_BODY, names.QUEUE_IDEMPOTENCY_FIELD: "priming"}))
        _prime_sender(settings)
        if settings.dead_letter_queue_url:
            from gateway.sending import dead_letters

            _stop_before_sending(
                dead_letters.sqs_client(),
                "SendMessage",
                {"QueueUrl": settings.dead_letter_queue_url, "MessageBody": "{}"},
            )


def forget_environment() -> None:
    """After the restore: what a snapshot must not share between the environments made from it."""
    from gateway.sending.send import get_sender

    if get_sender.cache_info().currsize:
        get_sender().token_source.forget()
    POOL.clear()
    close_connections()
    random.seed()  # from os.urandom: each restored environment draws its own numbers


@contextlib.contextmanager
def _priming(function: str) -> Iterator[Any]:
    """Settings for priming, or None when they are missing: a function must still start without it."""
    try:
        settings = get_settings()
    except SettingsError as error:
        logger.warning("not primed: the settings are incomplete", extra={"reason": str(error)})
        yield None
        return
    with _untraced():
        yield settings
    logger.debug("primed", extra={"function": function})


def _prime_output() -> None:
    """The first log line's formatting and the first metrics' serialisation, written nowhere; and the
    IDNA codec the first connection to a host name loads."""
    import logging

    from gateway.observability import metrics

    record = logging.LogRecord("priming", logging.INFO, __file__, 0, "primed", None, None)
    record.extra = {"destination_count": 1}
    logger.registered_formatter.format(record)
    metrics.serialize_metric_set(metrics={"Priming": {"Unit": "Count", "Value": [1.0]}})
    "priming.invalid".encode("idna")


def _prime_sender(settings: Any) -> Any:
    """Number metadata, the sender and its clients, and the AWS operations a send makes."""
    from gateway.sending.send import get_sender
    from gateway.settings import Settings

    assert isinstance(settings, Settings)
    examples = []
    for region in settings.prime_countries:
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        if example is not None:
            examples.append(
                normalise(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
            )
    _prime_output()
    sender = get_sender()
    _prime_guard(settings, examples)
    _stop_before_sending(sender.token_source.client, "GetSecretValue", {"SecretId": settings.token_secret_id})
    if sender.tracking is not None:
        item = {names.TRACKING_KEY_ATTRIBUTE: {"S": "priming"}}
        _stop_before_sending(
            sender.tracking.client,
            "BatchWriteItem",
            {"RequestItems": {sender.tracking.table_name: [{"PutRequest": {"Item": item}}]}},
        )
    if sender.suppression is not None:
        # A send of one number reads its bucket, a larger one reads buckets in batches.
        for destinations in (["306912345678"], ["306912345678", "35799123456"]):
            with _answered_here(sender.suppression.client):
                sender.suppression.check(destinations, "Priming")
    from gateway.sending.idempotency import get_idempotent_sender

    store = get_idempotent_sender().prepare()
    key = {names.IDEMPOTENCY_KEY_ATTRIBUTE: {"S": "priming"}}
    for operation, parameters in (
        ("GetItem", {"Key": key}),
        ("PutItem", {"Item": key}),
        ("UpdateItem", {"Key": key}),
        ("DeleteItem", {"Key": key}),
    ):
        _stop_before_sending(store.client, operation, {"TableName": store.table_name, **parameters})
    return sender


def _prime_guard(settings: Any, examples: list[str]) -> None:
    """The destination policy's patterns of the countries callers use, and the caps' code, client and
    the update that counts a send (answered here: nothing reaches AWS)."""
    from gateway.guard.policy import get_policy

    policy = get_policy()
    if policy is not None:
        policy.refusals(examples)
    if settings.usage_table is None:
        return
    from gateway.guard.caps import day_key, get_caps

    caps = get_caps()
    if caps is not None:
        caps.day()
        _stop_before_sending(
            caps.store.client,
            "UpdateItem",
            {
                "TableName": caps.store.table_name,
                "Key": day_key("priming"),
                "UpdateExpression": "ADD spend :c",
                "ExpressionAttributeValues": {":c": {"N": "0"}},
            },
        )


def _stop_before_sending(client: Any, operation: str, parameters: dict[str, Any]) -> None:
    """Make one call that botocore answers itself before signing it: nothing reaches AWS.

    The operation's model, its serializer and the endpoint rules (cached per parameters) are
    loaded by it, as the first real call would load them.
    """
    with _answered_here(client):
        getattr(client, xform_name(operation))(**parameters)


@contextlib.contextmanager
def _answered_here(client: Any | None) -> Iterator[None]:
    """While it lasts, botocore answers every call of `client` with an empty answer, unsigned and unsent."""
    if client is None:
        yield
        return
    event = f"before-call.{client.meta.service_model.service_id.hyphenize()}"
    marker = "viber-gateway-priming"

    def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse(url="priming", status_code=200, headers={}, raw=None), {}

    client.meta.events.register_first(event, answer, unique_id=marker)
    try:
        yield
    finally:
        client.meta.events.unregister(event, unique_id=marker)


@contextlib.contextmanager
def _untraced() -> Iterator[None]:
    """X-Ray off while priming: Lambda's init has no segment for the calls above to go into."""
    if not tracing_enabled():
        yield
        return
    from aws_xray_sdk import global_sdk_config

    was_enabled = global_sdk_config.sdk_enabled()
    global_sdk_config.set_sdk_enabled(False)
    try:
        yield
    finally:
        global_sdk_config.set_sdk_enabled(was_enabled)
