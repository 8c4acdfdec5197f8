"""The two functions: runtime, architecture, environment, logs, tracing, code and layer."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_

from gateway import names
from infra.components import function as function_component
from infra.components.function import FUNCTION_CODE_EXCLUDES, DependencyLayer
from infra.config import ConfigError, GatewayConfig
from tests.infra.synth import REPO, Synthesized


def function_by_handler(stack: Synthesized, handler: str) -> dict[str, Any]:
    matching = [props for props in stack.properties("AWS::Lambda::Function") if props["Handler"] == handler]
    assert len(matching) == 1, f"expected one function with handler {handler}"
    return matching[0]


HANDLERS = [names.API_HANDLER, names.QUEUE_HANDLER]


def test_there_are_exactly_the_two_functions(any_stack: Synthesized) -> None:
    # Given the synthesized stack
    # When its functions are listed
    handlers = sorted(props["Handler"] for props in any_stack.properties("AWS::Lambda::Function"))

    # Then they are the API and queue handlers named in names.py (no CDK helper functions)
    assert handlers == sorted(HANDLERS)


@pytest.mark.parametrize("handler", HANDLERS)
def test_functions_run_on_arm64_with_the_layer_python(default_stack: Synthesized, handler: str) -> None:
    # Given a function of the stack
    function = function_by_handler(default_stack, handler)

    # Then it runs the Python the layer is built for (the newest aws-cdk-lib offers), on Graviton
    assert function["Runtime"] == f"python{names.LAMBDA_PYTHON_VERSION}"
    assert names.LAMBDA_PYTHON_VERSION >= "3.13"
    assert function["Architectures"] == ["arm64"]
    layer = default_stack.only("AWS::Lambda::LayerVersion")
    assert layer["CompatibleRuntimes"] == [function["Runtime"]]
    assert layer["CompatibleArchitectures"] == ["arm64"]


@pytest.mark.parametrize(
    ("handler", "timeout"),
    [
        (names.API_HANDLER, names.API_FUNCTION_TIMEOUT_SECONDS),
        (names.QUEUE_HANDLER, names.QUEUE_FUNCTION_TIMEOUT_SECONDS),
    ],
)
def test_function_timeouts_come_from_names(default_stack: Synthesized, handler: str, timeout: int) -> None:
    # Given a function of the stack
    # Then its timeout is the one names.py shares with the queue settings
    assert function_by_handler(default_stack, handler)["Timeout"] == timeout
    # And API Gateway's 29 s integration limit leaves the API function room to answer
    assert names.API_FUNCTION_TIMEOUT_SECONDS < 29


@pytest.mark.parametrize("handler", HANDLERS)
def test_functions_get_the_environment_the_gateway_reads(default_stack: Synthesized, handler: str) -> None:
    # Given a function of the stack
    variables = function_by_handler(default_stack, handler)["Environment"]["Variables"]
    secret_id = next(iter(default_stack.resources("AWS::SecretsManager::Secret")))
    table_id = next(iter(default_stack.resources("AWS::DynamoDB::Table")))

    # Then it is told where the token, the provider and the table are, and how to log and count
    assert variables[names.ENV_PROVIDER_TOKEN_SECRET] == {"Ref": secret_id}
    assert variables[names.ENV_PROVIDER_BASE_URL] == names.PRODUCTION_PROVIDER_BASE_URL
    assert variables[names.ENV_METRICS_NAMESPACE] == names.DEFAULT_METRICS_NAMESPACE
    assert variables[names.ENV_SERVICE_NAME] == names.SERVICE_NAME
    assert variables[names.ENV_IDEMPOTENCY_TABLE] == {"Ref": table_id}
    assert variables[names.ENV_LOG_LEVEL] == "INFO"


def test_only_the_queue_function_knows_the_dead_letter_queue(default_stack: Synthesized) -> None:
    # Given both functions
    api = function_by_handler(default_stack, names.API_HANDLER)["Environment"]["Variables"]
    queue = function_by_handler(default_stack, names.QUEUE_HANDLER)["Environment"]["Variables"]
    dead_letter_queue_id = next(
        logical_id
        for logical_id, resource in default_stack.resources("AWS::SQS::Queue").items()
        if resource["Properties"]["QueueName"].startswith(names.DEAD_LETTER_QUEUE_NAME)
    )

    # Then the queue function can park failures there at once, and the API function has no queue
    assert queue[names.ENV_DEAD_LETTER_QUEUE_URL] == {"Ref": dead_letter_queue_id}
    assert names.ENV_DEAD_LETTER_QUEUE_URL not in api


def test_the_provider_base_url_comes_from_the_context(alternative_stack: Synthesized) -> None:
    # Given a stack synthesized with another stage
    # Then the functions still default to the production provider, the only real one
    for handler in HANDLERS:
        variables = function_by_handler(alternative_stack, handler)["Environment"]["Variables"]
        assert variables[names.ENV_PROVIDER_BASE_URL] == names.PRODUCTION_PROVIDER_BASE_URL


@pytest.mark.parametrize("handler", HANDLERS)
def test_functions_log_json_into_their_own_log_group_and_trace(
    default_stack: Synthesized, handler: str
) -> None:
    # Given a function of the stack
    function = function_by_handler(default_stack, handler)
    log_groups = default_stack.resources("AWS::Logs::LogGroup")

    # Then it logs JSON at the level Powertools uses, into an explicit log group with retention
    logging = function["LoggingConfig"]
    assert logging["LogFormat"] == "JSON"
    assert logging["ApplicationLogLevel"] == function["Environment"]["Variables"][names.ENV_LOG_LEVEL]
    log_group = log_groups[logging["LogGroup"]["Ref"]]
    assert log_group["Properties"]["RetentionInDays"] == 30
    # And X-Ray traces it
    assert function["TracingConfig"] == {"Mode": "Active"}


def test_log_retention_comes_from_the_context(alternative_stack: Synthesized) -> None:
    # Given logRetentionDays=90
    # Then every log group of the stack keeps 90 days
    retentions = {props["RetentionInDays"] for props in alternative_stack.properties("AWS::Logs::LogGroup")}
    assert retentions == {90}


def test_tests_synthesize_with_the_clearly_marked_placeholder_layer(default_stack: Synthesized) -> None:
    # Given the stack synthesized by the tests (placeholderLayer set)
    layer = default_stack.only("AWS::Lambda::LayerVersion")

    # Then the layer says it is a placeholder, and synthesis warned about it
    assert "PLACEHOLDER" in layer["Description"]
    violations = [
        violation["ruleName"]
        for report in default_stack.validation_report.get("pluginReports", [])
        for violation in report["violations"]
    ]
    assert "Annotation::viber-gateway:placeholder-layer" in violations


def test_without_the_placeholder_flag_the_built_layer_is_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given no built layer (make build not run) and no placeholderLayer flag
    monkeypatch.setattr(function_component, "LAYER_DIR", tmp_path / "build" / "layer")
    monkeypatch.setattr(function_component, "REPO_ROOT", tmp_path)

    # When the layer is defined, as `make synth` and `make deploy` define it
    # Then synthesis stops and says how to build it
    with pytest.raises(ConfigError, match=r"build/layer/python does not exist: run `make build`"):
        DependencyLayer(Stack(App()), "Dependencies", config=GatewayConfig())


def test_without_the_placeholder_flag_the_built_layer_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a built layer
    (tmp_path / "build" / "layer" / "python").mkdir(parents=True)
    monkeypatch.setattr(function_component, "LAYER_DIR", tmp_path / "build" / "layer")

    # When the layer is defined without the placeholder flag
    layer = DependencyLayer(Stack(App()), "Dependencies", config=GatewayConfig())

    # Then it is the real one, described as such
    description = layer.layer.node.default_child.description  # type: ignore[union-attr]
    assert "PLACEHOLDER" not in description
    assert "dependencies" in description


def test_function_code_leaves_out_bytecode(tmp_path: Path) -> None:
    # Given a code directory with bytecode next to the sources, as a test run leaves it
    source = tmp_path / "functions"
    (source / "gateway" / "__pycache__").mkdir(parents=True)
    (source / "handler.py").write_text("")
    (source / "gateway" / "send.py").write_text("")
    (source / "gateway" / "__pycache__" / "send.cpython-311.pyc").write_bytes(b"")
    (source / "stray.pyc").write_bytes(b"")

    # When it is staged as a function asset with the stack's excludes
    outdir = tmp_path / "out"
    app = App(outdir=str(outdir))
    lambda_.Code.from_asset(str(source), exclude=FUNCTION_CODE_EXCLUDES).bind(Stack(app, "CodeOnly"))
    app.synth()

    # Then only the sources are shipped
    (asset_dir,) = outdir.glob("asset.*")
    shipped = sorted(str(path.relative_to(asset_dir)) for path in asset_dir.rglob("*") if path.is_file())
    assert shipped == ["gateway/send.py", "handler.py"]


def _pruned_phonenumbers_modules() -> set[str]:
    makefile = (REPO / "Makefile").read_text()
    prune_list = re.search(r"^LAYER_PRUNE :=(.*?)(?<!\\)\n", makefile, re.MULTILINE | re.DOTALL)
    assert prune_list is not None, "LAYER_PRUNE not found in the Makefile"
    return set(re.findall(r"phonenumbers/(\w+)", prune_list.group(1)))


def _phonenumbers_names_used(source: str) -> set[str]:
    used: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            used |= {
                alias.name.split(".")[1] for alias in node.names if alias.name.startswith("phonenumbers.")
            }
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("phonenumbers"):
            parts = (node.module or "").split(".")
            used |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "phonenumbers"
        ):
            used.add(node.attr)
    return used


def test_the_gateway_uses_nothing_make_build_prunes_from_phonenumbers() -> None:
    # Given what `make build` removes from phonenumbers (geocoder, carrier, time zones)
    pruned = _pruned_phonenumbers_modules()
    assert {"geocoder", "carrier", "timezone"} <= pruned

    # When every module of the function code is searched for what it takes from phonenumbers
    used = {
        name
        for path in (REPO / "functions").rglob("*.py")
        for name in _phonenumbers_names_used(path.read_text())
    }

    # Then nothing it uses is missing from the layer
    assert not used & pruned, f"functions/ use pruned phonenumbers parts: {sorted(used & pruned)}"


def test_the_phonenumbers_check_sees_a_pruned_module() -> None:
    # Given code that would need the geocoder data
    source = "import phonenumbers\nfrom phonenumbers import geocoder\nphonenumbers.timezone.x()\n"

    # Then the check above would notice it
    assert {"geocoder", "timezone"} <= _phonenumbers_names_used(source)
