"""The REST API: the API function's routes (send, preview, look up, balance, the suppression list,
scheduled sends) and `GET /openapi.json`."""

from __future__ import annotations

import json

from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_events as events
from aws_cdk import aws_logs as logs
from constructs import Construct

from gateway import names
from infra.components.function import (
    LOG_GROUP_ENCRYPTION_REASON,
    SUPPRESSION_API_ACTIONS,
    TRACKING_LOOKUP_ACTIONS,
    TRACKING_SEND_ACTIONS,
    GatewayFunction,
    SharedFunctionResources,
    log_retention,
)
from infra.components.schedules import ScheduledSends
from infra.config import AuthMode, ConfigError
from infra.nag import acknowledge, skip_checkov
from infra.openapi import OpenApiError, generate_document, mock_response_template

MESSAGES_PATH = "messages"
SUPPRESSIONS_PATH = "suppressions"
SCHEDULES_PATH = "schedules"
OPENAPI_PATH = "openapi.json"

# One JSON object per request. No bodies and no headers: requests carry phone
# numbers, and the x-api-key header is a credential.
_ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": apigateway.AccessLogField.context_request_id(),
        "extendedRequestId": apigateway.AccessLogField.context_extended_request_id(),
        "requestTime": apigateway.AccessLogField.context_request_time(),
        "ip": apigateway.AccessLogField.context_identity_source_ip(),
        "httpMethod": apigateway.AccessLogField.context_http_method(),
        "resourcePath": apigateway.AccessLogField.context_resource_path(),
        "protocol": apigateway.AccessLogField.context_protocol(),
        "status": apigateway.AccessLogField.context_status(),
        "responseLength": apigateway.AccessLogField.context_response_length(),
        "responseLatency": apigateway.AccessLogField.context_response_latency(),
        "integrationLatency": apigateway.AccessLogField.context_integration_latency(),
        "integrationStatus": apigateway.AccessLogField.context_integration_status(),
        "apiKeyId": apigateway.AccessLogField.context_identity_api_key_id(),
        "userArn": apigateway.AccessLogField.context_identity_user_arn(),
        "errorMessage": apigateway.AccessLogField.context_error_message(),
        "xrayTraceId": apigateway.AccessLogField.context_xray_trace_id(),
    }
)


def problem_template(status: int, title: str) -> str:
    """An error API Gateway answers itself (missing key, throttled, too large) as an RFC 9457 problem.

    Gateway response templates are not VTL, only variable substitution: the status comes from
    names.API_GATEWAY_RESPONSES, one template per response type. messageString is quoted JSON.
    """
    return (
        f'{{"type": "about:blank", "title": {json.dumps(title)}, "status": {status}, '
        '"detail": $context.error.messageString, "request_id": "$context.requestId"}'
    )


class MessagesApi(Construct):
    """Regional REST API with stage throttling, access and execution logs and X-Ray.

    Every route of the function (`POST /messages`, `POST /messages/preview`,
    `GET /messages`, `GET /messages/{smsid}`, `GET /account/balance`, and the suppression
    list's `GET /suppressions`, `POST /suppressions/import`, `GET`/`PUT`/`DELETE
    /suppressions/{number}`, and the scheduled sends' `GET /schedules`, `GET`/`DELETE
    /schedules/{schedule_id}`) needs an API key (usage plan with the same throttling) in
    `api_key` mode, or SigV4 (AWS_IAM) in `iam` mode. `GET /openapi.json` stays open so
    that callers can fetch the contract.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        shared: SharedFunctionResources,
        bus: events.IEventBus,
        scheduled_sends: ScheduledSends,
    ) -> None:
        super().__init__(scope, construct_id)
        config = shared.config
        self.handler = GatewayFunction(
            self,
            "Handler",
            shared=shared,
            handler=names.API_HANDLER,
            description=f"{names.SERVICE_NAME} REST API: send, preview, look up, balance, suppression list, "
            "schedules",
            timeout_seconds=names.API_FUNCTION_TIMEOUT_SECONDS,
            memory_mb=names.API_FUNCTION_MEMORY_MB,
            snap_start=config.snap_start,
            # A hung provider holds every invocation up to the timeout: the cap keeps it from
            # taking the account's concurrency from everything else (infra.config).
            reserved_concurrency=config.api_reserved_concurrency,
            unreserved_reason="apiReservedConcurrency=none was chosen: the account's concurrency quota "
            "leaves nothing to reserve (README: Limits).",
            # Sends are recorded for tracking; lookups read what the tracker keeps.
            tracking_actions=TRACKING_SEND_ACTIONS + TRACKING_LOOKUP_ACTIONS,
            # Sends leave suppressed numbers out; the list's routes add, change, remove, list, import.
            suppression_actions=SUPPRESSION_API_ACTIONS,
            # Destination Suppressed and Suppression Removed, when the list changes through the API;
            # Send Scheduled and Scheduled Send Cancelled.
            event_bus=bus,
            # POST /messages with send_at (or outside the send window), GET and DELETE /schedules.
            scheduled_sends=scheduled_sends,
            # Each send counted against its API key's daily limits and the stage's spend ceiling.
            counts_usage=True,
        )
        self.access_log_group = logs.LogGroup(self, "AccessLogs", retention=log_retention(config))
        skip_checkov(self.access_log_group, "CKV_AWS_158", LOG_GROUP_ENCRYPTION_REASON)
        self.rest_api = apigateway.RestApi(
            self,
            "RestApi",
            rest_api_name=config.physical_name(names.SERVICE_NAME),
            description=f"{names.SERVICE_NAME} ({config.stage}): Viber messages with SMS fallback",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            # Execution logs need the account-level CloudWatch role of API Gateway.
            cloud_watch_role=True,
            deploy_options=apigateway.StageOptions(
                stage_name=config.stage,
                throttling_rate_limit=config.throttle_rate,
                throttling_burst_limit=config.throttle_burst,
                access_log_destination=apigateway.LogGroupLogDestination(self.access_log_group),
                access_log_format=apigateway.AccessLogFormat.custom(_ACCESS_LOG_FORMAT),
                logging_level=apigateway.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # would log full requests: phone numbers and texts
                metrics_enabled=True,
                tracing_enabled=True,
            ),
        )
        # The stack outputs the URL as ApiUrl, next to the other outputs.
        self.rest_api.node.try_remove_child("Endpoint")
        self._add_problem_responses()
        self._acknowledge_account_role()

        # Bodies are validated by the function, which answers problem+json with
        # field errors; API Gateway checks the basics (parameters, body switch on).
        self._validator = self.rest_api.add_request_validator(
            "BasicValidator", validate_request_body=True, validate_request_parameters=True
        )
        self._integration = apigateway.LambdaIntegration(self.handler.alias, proxy=True)
        self._iam_mode = config.auth_mode is AuthMode.IAM
        # Every route the function serves (api_handler), each protected alike.
        messages = self.rest_api.root.add_resource(MESSAGES_PATH)
        suppressions = self.rest_api.root.add_resource(SUPPRESSIONS_PATH)
        # A static segment beside a path parameter: API Gateway matches `import` first.
        suppressed_number = suppressions.add_resource("{number}")
        schedules = self.rest_api.root.add_resource(SCHEDULES_PATH)
        schedule = schedules.add_resource("{schedule_id}")
        self.send_method = self._protected(messages, "POST")
        self.methods = {
            f"POST /{MESSAGES_PATH}": self.send_method,
            f"GET /{MESSAGES_PATH}": self._protected(messages, "GET"),
            f"GET /{MESSAGES_PATH}/{{smsid}}": self._protected(messages.add_resource("{smsid}"), "GET"),
            f"POST /{MESSAGES_PATH}/preview": self._protected(messages.add_resource("preview"), "POST"),
            "GET /account/balance": self._protected(
                self.rest_api.root.add_resource("account").add_resource("balance"), "GET"
            ),
            f"GET /{SUPPRESSIONS_PATH}": self._protected(suppressions, "GET"),
            f"POST /{SUPPRESSIONS_PATH}/import": self._protected(suppressions.add_resource("import"), "POST"),
            **{
                f"{verb} /{SUPPRESSIONS_PATH}/{{number}}": self._protected(suppressed_number, verb)
                for verb in ("GET", "PUT", "DELETE")
            },
            # Scheduled sends: list them (by time), look one up, cancel one.
            f"GET /{SCHEDULES_PATH}": self._protected(schedules, "GET"),
            **{
                f"{verb} /{SCHEDULES_PATH}/{{schedule_id}}": self._protected(schedule, verb)
                for verb in ("GET", "DELETE")
            },
        }
        self.openapi_document = self._openapi_document()
        openapi_method = self.rest_api.root.add_resource(OPENAPI_PATH).add_method(
            "GET",
            self._openapi_integration(self.openapi_document),
            method_responses=[
                apigateway.MethodResponse(
                    status_code="200", response_parameters={"method.response.header.Content-Type": True}
                )
            ],
        )
        for rule_id in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
            acknowledge(
                openapi_method,
                rule_id,
                "The OpenAPI document is public on purpose: it describes the contract, holds no data.",
            )
        skip_checkov(
            openapi_method,
            "CKV_AWS_59",
            "GET /openapi.json is public on purpose and reaches no back end: a MOCK integration returns "
            "the contract, which holds no data.",
        )
        skip_checkov(
            self.rest_api.deployment_stage,
            "CKV_AWS_120",
            "No cache: POST /messages must reach the function every time (a cached answer would report a "
            "send that did not happen), and GET /openapi.json is answered by API Gateway itself.",
        )
        acknowledge(
            self.rest_api.deployment_stage,
            "AwsSolutions-APIG3",
            "No WAF web ACL: callers are known systems (API key or IAM), with stage and usage-plan "
            "throttling; attach an account-level WAF ACL if the API becomes internet-facing for others.",
        )

        self.api_key: apigateway.IApiKey | None = None
        if not self._iam_mode:
            usage_plan = self.rest_api.add_usage_plan(
                "UsagePlan",
                name=config.physical_name(names.SERVICE_NAME),
                description="Callers of the API (send, preview, look up, balance, suppressions, schedules)",
                throttle=apigateway.ThrottleSettings(
                    rate_limit=config.throttle_rate, burst_limit=config.throttle_burst
                ),
                api_stages=[
                    apigateway.UsagePlanPerApiStage(api=self.rest_api, stage=self.rest_api.deployment_stage)
                ],
            )
            self.api_key = self.rest_api.add_api_key(
                "ApiKey",
                description=f"{names.SERVICE_NAME} ({config.stage}) callers (aws apigateway get-api-key)",
            )
            usage_plan.add_api_key(self.api_key)

    def _protected(self, resource: apigateway.IResource, verb: str) -> apigateway.Method:
        """A route to the function that needs the API key (api_key mode) or SigV4 (iam mode)."""
        method = resource.add_method(
            verb,
            self._integration,
            api_key_required=not self._iam_mode,
            authorization_type=apigateway.AuthorizationType.IAM
            if self._iam_mode
            else apigateway.AuthorizationType.NONE,
            request_validator=self._validator,
        )
        if not self._iam_mode:
            for rule_id in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
                acknowledge(
                    method,
                    rule_id,
                    "api_key auth mode (chosen by context): callers are other systems holding an API key "
                    "of the usage plan; use -c authMode=iam for SigV4 authorization.",
                )
        else:
            acknowledge(
                method,
                "AwsSolutions-COG4",
                "Callers are AWS workloads authorized with SigV4 (AWS_IAM), not Cognito users.",
            )
        return method

    def _add_problem_responses(self) -> None:
        for response_type, (status, title) in names.API_GATEWAY_RESPONSES.items():
            self.rest_api.add_gateway_response(
                "".join(part.capitalize() for part in response_type.split("_")),
                type=apigateway.ResponseType.of(response_type),
                # Each type's documented status, set explicitly so the body's status is the answer's.
                status_code=str(status),
                response_headers={"Content-Type": "'application/problem+json'"},
                templates={"application/json": problem_template(status, title)},
            )

    @staticmethod
    def _openapi_document() -> str:
        try:
            return generate_document()
        except OpenApiError as error:
            raise ConfigError(str(error)) from error

    @staticmethod
    def _openapi_integration(document: str) -> apigateway.MockIntegration:
        """The function's own document, answered by API Gateway without invoking it (infra.openapi)."""
        try:
            template = mock_response_template(document)
        except OpenApiError as error:
            raise ConfigError(str(error)) from error
        return apigateway.MockIntegration(
            request_templates={"application/json": '{"statusCode": 200}'},
            # A GET carries no body; anything sent as another type is refused (415), not passed on.
            passthrough_behavior=apigateway.PassthroughBehavior.NEVER,
            integration_responses=[
                apigateway.IntegrationResponse(
                    status_code="200",
                    response_templates={"application/json": template},
                    response_parameters={"method.response.header.Content-Type": "'application/json'"},
                )
            ],
        )

    def _acknowledge_account_role(self) -> None:
        role = self.rest_api.node.try_find_child("CloudWatchRole")
        if role is not None:
            acknowledge(
                role,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                "API Gateway's account-level role for execution logs: AWS documents this managed policy.",
            )
