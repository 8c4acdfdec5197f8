"""The REST API: routes, authentication in both modes, throttling, logging, validation."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from gateway import names
from tests.infra.synth import Synthesized


def method(stack: Synthesized, http_method: str, path_part: str) -> dict[str, Any]:
    resources = stack.resources("AWS::ApiGateway::Resource")
    for props in stack.properties("AWS::ApiGateway::Method"):
        resource = resources.get(props["ResourceId"].get("Ref", ""), {})
        if props["HttpMethod"] == http_method and resource.get("Properties", {}).get("PathPart") == path_part:
            return props
    raise AssertionError(f"no {http_method} /{path_part}")


def path_of(stack: Synthesized, resource_ref: dict[str, Any]) -> str:
    """The full path of an API Gateway resource, from its chain of parents."""
    resources = stack.resources("AWS::ApiGateway::Resource")
    parts: list[str] = []
    ref = resource_ref.get("Ref")
    while ref in resources:
        properties = resources[ref]["Properties"]
        parts.insert(0, properties["PathPart"])
        ref = properties["ParentId"].get("Ref")
    return "/" + "/".join(parts)


def routes(stack: Synthesized) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (props["HttpMethod"], path_of(stack, props["ResourceId"])): props
        for props in stack.properties("AWS::ApiGateway::Method")
    }


def test_the_api_routes_what_the_function_serves_and_its_contract(any_stack: Synthesized) -> None:
    import api_handler

    # Given the API's methods, and the routes the API function's own OpenAPI document describes
    deployed = routes(any_stack)
    served = {
        (verb.upper(), path)
        for path, operations in json.loads(api_handler.openapi_json())["paths"].items()
        for verb in operations
    }

    # Then the API has exactly those routes, plus GET /openapi.json
    assert set(deployed) == served | {("GET", "/openapi.json")}
    assert {
        ("GET", "/messages/{smsid}"),
        ("POST", "/messages/preview"),
        ("GET", "/account/balance"),
    } <= served
    # And each of the function's routes is proxied to its live alias
    (alias_id,) = [
        logical_id
        for logical_id, resource in any_stack.resources("AWS::Lambda::Alias").items()
        if resource["Properties"]["FunctionName"]["Ref"].startswith("ApiHandler")
    ]
    for route in served:
        integration = deployed[route]["Integration"]
        assert integration["Type"] == "AWS_PROXY", route
        assert {"Ref": alias_id} in integration["Uri"]["Fn::Join"][1], route
    # And the contract is answered by API Gateway itself (tests/infra/test_infra_openapi.py)
    assert deployed[("GET", "/openapi.json")]["Integration"]["Type"] == "MOCK"


def test_every_route_of_the_function_needs_the_key_or_sigv4(
    default_stack: Synthesized, alternative_stack: Synthesized
) -> None:
    # Given both auth modes: api_key (default) and iam (alternative)
    for stack, needs_key, authorization in (
        (default_stack, True, "NONE"),
        (alternative_stack, False, "AWS_IAM"),
    ):
        for route, props in routes(stack).items():
            if route == ("GET", "/openapi.json"):
                continue
            # Then every route of the function is protected alike
            assert props.get("ApiKeyRequired", False) is needs_key, route
            assert props["AuthorizationType"] == authorization, route


def test_posting_messages_requires_an_api_key_by_default(default_stack: Synthesized) -> None:
    # Given the default auth mode (api_key)
    send = method(default_stack, "POST", "messages")

    # Then POST /messages needs a key of the stack's usage plan
    assert send["ApiKeyRequired"] is True
    usage_plan = default_stack.only("AWS::ApiGateway::UsagePlan")
    assert usage_plan["Throttle"] == {"RateLimit": 20, "BurstLimit": 40}
    (api_key_id,) = default_stack.resources("AWS::ApiGateway::ApiKey")
    assert default_stack.only("AWS::ApiGateway::UsagePlanKey")["KeyId"] == {"Ref": api_key_id}
    assert default_stack.template["Outputs"]["ApiKeyId"]["Value"] == {"Ref": api_key_id}
    # And the basic request validator checks it
    validator_id = next(iter(default_stack.resources("AWS::ApiGateway::RequestValidator")))
    assert send["RequestValidatorId"] == {"Ref": validator_id}


def test_posting_messages_requires_sigv4_in_iam_mode(alternative_stack: Synthesized) -> None:
    # Given authMode=iam
    send = method(alternative_stack, "POST", "messages")

    # Then POST /messages is authorized by IAM, and no API key or usage plan exists
    assert send["AuthorizationType"] == "AWS_IAM"
    assert send.get("ApiKeyRequired", False) is False
    assert not alternative_stack.resources("AWS::ApiGateway::ApiKey")
    assert not alternative_stack.resources("AWS::ApiGateway::UsagePlan")
    assert "ApiKeyId" not in alternative_stack.template["Outputs"]


def test_the_openapi_document_is_public(any_stack: Synthesized) -> None:
    # Given GET /openapi.json
    openapi = method(any_stack, "GET", "openapi.json")

    # Then anyone may read the contract
    assert openapi["AuthorizationType"] == "NONE"
    assert openapi.get("ApiKeyRequired", False) is False


def test_the_stage_throttles_logs_and_traces(any_stack: Synthesized) -> None:
    # Given the API stage
    stage = any_stack.only("AWS::ApiGateway::Stage")
    access_log_group_ids = set(any_stack.resources("AWS::Logs::LogGroup"))

    # Then it is named after the configured stage and throttles every method
    assert stage["StageName"] == any_stack.context.get("stage", "prod")
    (settings,) = stage["MethodSettings"]
    assert settings["HttpMethod"] == "*"
    assert settings["ResourcePath"] == "/*"
    assert settings["ThrottlingRateLimit"] == 20
    assert settings["ThrottlingBurstLimit"] == 40
    # And writes access logs (no bodies) into a log group, execution errors, metrics and traces
    destination = json.dumps(stage["AccessLogSetting"]["DestinationArn"])
    assert [log_group for log_group in access_log_group_ids if log_group in destination]
    assert "$context.requestId" in stage["AccessLogSetting"]["Format"]
    assert settings["LoggingLevel"] == "ERROR"
    assert settings["DataTraceEnabled"] is False
    assert settings["MetricsEnabled"] is True
    assert stage["TracingEnabled"] is True


def test_gateway_errors_are_problem_documents(default_stack: Synthesized) -> None:
    # Given the responses API Gateway makes itself (no key, throttled, too large, unknown route...)
    responses = default_stack.properties("AWS::ApiGateway::GatewayResponse")
    from api_handler import openapi_json

    description = json.loads(openapi_json())
    problem_schema = {
        **description["components"]["schemas"]["Problem"],
        "components": description["components"],
    }

    # Then every documented response type is there, with its status set explicitly
    assert {response["ResponseType"] for response in responses} == set(names.API_GATEWAY_RESPONSES)
    for response in responses:
        status, title = names.API_GATEWAY_RESPONSES[response["ResponseType"]]
        assert response["StatusCode"] == str(status)
        assert response["ResponseParameters"] == {
            "gatewayresponse.header.Content-Type": "'application/problem+json'"
        }
        # And, with API Gateway's variables substituted, its body is a problem the description documents
        rendered = (
            response["ResponseTemplates"]["application/json"]
            .replace("$context.error.messageString", json.dumps('Missing "key"'))
            .replace("$context.requestId", "c6af9ac6-7b61-11e6-9a41-93e8deadbe01")
        )
        problem = json.loads(rendered)
        jsonschema.validate(problem, problem_schema)
        assert (problem["status"], problem["title"], problem["detail"]) == (status, title, 'Missing "key"')
        assert problem["request_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbe01"
