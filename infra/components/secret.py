"""The LiveAll API token: an existing secret, or one the stack creates without the token."""

from __future__ import annotations

import json

from aws_cdk import RemovalPolicy
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from gateway import names
from infra.config import GatewayConfig
from infra.nag import acknowledge, skip_checkov


class ProviderTokenSecret(Construct):
    """`self.secret` holds the token as JSON, `{"apitoken": "<token>"}`.

    The created secret starts with a generated placeholder, never the token: the
    operator puts the token in with `aws secretsmanager put-secret-value`
    (README.md, "Deploying to AWS"). CloudFormation only regenerates the value if the
    generator settings below change, so keep them stable.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: GatewayConfig) -> None:
        super().__init__(scope, construct_id)
        self.created = config.token_secret_arn is None
        if config.token_secret_arn is not None:
            self.secret: secretsmanager.ISecret = secretsmanager.Secret.from_secret_complete_arn(
                self, "Existing", config.token_secret_arn
            )
            return
        secret = secretsmanager.Secret(
            self,
            "Secret",
            secret_name=config.physical_name(names.TOKEN_SECRET_NAME),
            description=(
                f"LiveAll API token for {names.SERVICE_NAME} ({config.stage}), JSON with the key "
                "apitoken. Created holding a placeholder: put the token with "
                "aws secretsmanager put-secret-value (README.md, Deploying to AWS)"
            ),
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps({}),
                generate_string_key="placeholder",
                exclude_punctuation=True,
                password_length=16,
            ),
            # Keeps the operator's token if the stack is deleted; a new stack can
            # take it back with -c tokenSecretArn=... (the name stays taken anyway
            # for the 30-day recovery window of a deleted secret).
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            secret,
            "AwsSolutions-SMG4",
            "The token is issued by LiveAll and cannot be rotated by a Lambda; the operator replaces it.",
        )
        skip_checkov(
            secret,
            "CKV_AWS_149",
            "Encrypted with the AWS managed key aws/secretsmanager, which the functions' roles may use "
            "through Secrets Manager only; a customer managed key adds a key policy to keep right and "
            "buys no narrower access (only the two function roles may read the secret).",
        )
        self.secret = secret
