"""GET /openapi.json: the API function's own document, served by API Gateway without invoking it."""

from __future__ import annotations

import json
import re

import pytest

from api_handler import openapi_json
from infra.openapi import OpenApiError, mock_response_template, rendered
from tests.infra.synth import Synthesized
from tests.infra.test_infra_api import method


def test_the_mock_renders_exactly_the_function_s_document(any_stack: Synthesized) -> None:
    # Given the GET /openapi.json method and the document the API function itself serves
    openapi = method(any_stack, "GET", "openapi.json")
    (response,) = openapi["Integration"]["IntegrationResponses"]
    template = response["ResponseTemplates"]["application/json"]

    # When the response template is rendered as API Gateway renders it (base64 decoded)
    document = rendered(template)

    # Then it is byte for byte the function's document, which describes POST /messages
    assert document == openapi_json()
    served = json.loads(document)
    assert "/messages" in served["paths"]
    # And it is the finished description clients are generated from: every operation under its
    # short operationId (tests/integration/test_openapi_description.py pins them), the license, and
    # none of the validation error schemas Powertools adds but the API never answers
    operation_ids = {op["operationId"] for ops in served["paths"].values() for op in ops.values()}
    assert {"sendMessage", "previewMessage", "getMessage", "cancelSchedule"} <= operation_ids
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)+", operation_id) for operation_id in operation_ids)
    assert served["info"]["license"]["name"]
    assert not {"HTTPValidationError", "ValidationError", "ResponseValidationError"} & set(
        served["components"]["schemas"]
    )


def test_velocity_sees_nothing_of_the_document_but_base64(default_stack: Synthesized) -> None:
    # Given the response template, and the document's own $ and # (which VTL would interpret)
    openapi = method(default_stack, "GET", "openapi.json")
    (response,) = openapi["Integration"]["IntegrationResponses"]
    template = response["ResponseTemplates"]["application/json"]
    assert "$ref" in openapi_json()
    assert "#/components" in openapi_json()

    # Then the template is one $util.base64Decode call of a base64 literal: no other $, # or quote
    assert re.fullmatch(r"\$util\.base64Decode\('[A-Za-z0-9+/]+=*'\)", template)
    assert template.count("$") == 1
    assert "#" not in template


def test_the_mock_answers_200_json_without_a_key_or_a_function(any_stack: Synthesized) -> None:
    # Given GET /openapi.json
    openapi = method(any_stack, "GET", "openapi.json")
    integration = openapi["Integration"]

    # Then API Gateway answers it alone: 200 with the JSON content type, open to anyone
    assert integration["Type"] == "MOCK"
    assert integration["RequestTemplates"] == {"application/json": '{"statusCode": 200}'}
    assert integration["PassthroughBehavior"] == "NEVER"
    (response,) = integration["IntegrationResponses"]
    assert response["StatusCode"] == "200"
    assert response["ResponseParameters"] == {"method.response.header.Content-Type": "'application/json'"}
    assert openapi["MethodResponses"] == [
        {"StatusCode": "200", "ResponseParameters": {"method.response.header.Content-Type": True}}
    ]
    assert openapi["AuthorizationType"] == "NONE"
    assert "Uri" not in integration


def test_a_document_the_template_could_not_carry_exactly_stops_the_synth() -> None:
    # Given documents with and without characters outside ASCII
    # When their templates are made
    # Then an ASCII one round-trips, and a non-ASCII one is refused with the reason
    assert rendered(mock_response_template('{"a": "$ref #/x \\\\d"}')) == '{"a": "$ref #/x \\\\d"}'
    with pytest.raises(OpenApiError, match="non-ASCII"):
        mock_response_template('{"title": "Αποστολή"}')
