"""Send message bodies to the queue of the running `make run`, without the AWS CLI.

python -m local.send events/message-im.json [more.json ...]
python -m local.send --idempotency-key order-1042 events/message-im.json

The runner logs what the queue function did with each message.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from gateway import names
from local.defaults import (
    ACCESS_KEY_ID,
    API_PORT,
    HOST,
    REGION,
    SECRET_ACCESS_KEY,
    aws_port_for,
)

DEFAULT_ENDPOINT_URL = f"http://{HOST}:{aws_port_for(API_PORT)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.send", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("bodies", nargs="+", type=Path, metavar="FILE", help="a JSON message body")
    parser.add_argument(
        "--endpoint-url",
        default=DEFAULT_ENDPOINT_URL,
        help="the AWS emulator `make run` printed (default: %(default)s)",
    )
    parser.add_argument(
        "--idempotency-key",
        help=f"sent as the message attribute {names.QUEUE_IDEMPOTENCY_ATTRIBUTE}: one send per key",
    )
    args = parser.parse_args(argv)

    sqs = boto3.client(
        "sqs",
        endpoint_url=args.endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )
    attributes = (
        {names.QUEUE_IDEMPOTENCY_ATTRIBUTE: {"DataType": "String", "StringValue": args.idempotency_key}}
        if args.idempotency_key
        else {}
    )
    try:
        queue_url = sqs.get_queue_url(QueueName=names.QUEUE_NAME)["QueueUrl"]
        for body in args.bodies:
            sent = sqs.send_message(
                QueueUrl=queue_url, MessageBody=body.read_text(encoding="utf-8"), MessageAttributes=attributes
            )
            print(f"{body}: message {sent['MessageId']} is on {queue_url}")
    except OSError as error:
        parser.error(str(error))
    except (BotoCoreError, ClientError) as error:
        print(f"local.send: {error}\nIs `make run` running, with this emulator?", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
