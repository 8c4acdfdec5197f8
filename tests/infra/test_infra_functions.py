"""The two functions: runtime, architecture, environment, logs, tracing, code and layer."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack

from gateway import names
from infra import artifacts
from infra.components import function as function_component
from infra.components.function import DependencyLayer
from infra.config import DEFAULT_LAMBDA_PYTHON_VERSION, ConfigError, GatewayConfig
from tests.infra.synth import REPO, Synthesized, cdk_json_context


def function_by_handler(stack: Synthesized, handler: str) -> dict[str, Any]:
    matching = [props for props in stack.properties("AWS::Lambda::Function") if props["Handler"] == handler]
    assert len(matching) == 1, f"expected one function with handler {handler}"
    return matching[0]


HANDLERS = [names.API_HANDLER, names.QUEUE_HANDLER, names.SCHEDULED_HANDLER]


def logical_id_by_name(stack: Synthesized, resource_type: str, name_property: str, base_name: str) -> str:
    stage = stack.context.get("stage", "prod")
    for logical_id, resource in stack.resources(resource_type).items():
        if resource["Properties"].get(name_property) == f"{base_name}-{stage}":
            return logical_id
    raise AssertionError(f"no {resource_type} named {base_name}-{stage}")


def test_there_are_exactly_the_two_functions(any_stack: Synthesized) -> None:
    # Given the synthesized stack
    # When its functions are listed
    handlers = sorted(props["Handler"] for props in any_stack.properties("AWS::Lambda::Function"))

    # Then they are the API, queue and scheduled handlers named in names.py (no CDK helper functions)
    assert handlers == sorted(HANDLERS)


@pytest.mark.parametrize("handler", HANDLERS)
def test_functions_run_on_arm64_with_the_layer_python(default_stack: Synthesized, handler: str) -> None:
    # Given a function of the stack
    function = function_by_handler(default_stack, handler)

    # Then it runs the Python of cdk.json's lambdaPythonVersion, on Graviton
    assert function["Runtime"] == f"python{cdk_json_context()['lambdaPythonVersion']}"
    assert function["Runtime"] == f"python{DEFAULT_LAMBDA_PYTHON_VERSION}"
    assert function["Architectures"] == ["arm64"]
    layer = default_stack.only("AWS::Lambda::LayerVersion")
    assert layer["CompatibleRuntimes"] == [function["Runtime"]]
    assert layer["CompatibleArchitectures"] == ["arm64"]


@pytest.mark.parametrize(
    ("handler", "timeout"),
    [
        (names.API_HANDLER, names.API_FUNCTION_TIMEOUT_SECONDS),
        (names.QUEUE_HANDLER, names.QUEUE_FUNCTION_TIMEOUT_SECONDS),
        (names.SCHEDULED_HANDLER, names.SCHEDULED_FUNCTION_TIMEOUT_SECONDS),
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
    table_id = logical_id_by_name(
        default_stack, "AWS::DynamoDB::Table", "TableName", names.IDEMPOTENCY_TABLE_NAME
    )
    tracking_id = logical_id_by_name(
        default_stack, "AWS::DynamoDB::Table", "TableName", names.TRACKING_TABLE_NAME
    )
    suppression_id = logical_id_by_name(
        default_stack, "AWS::DynamoDB::Table", "TableName", names.SUPPRESSION_TABLE_NAME
    )

    # Then it is told where the token, the provider and the tables are, and how to log and count
    assert variables[names.ENV_PROVIDER_TOKEN_SECRET] == {"Ref": secret_id}
    assert variables[names.ENV_PROVIDER_BASE_URL] == names.PRODUCTION_PROVIDER_BASE_URL
    assert variables[names.ENV_METRICS_NAMESPACE] == f"{names.DEFAULT_METRICS_NAMESPACE}/prod"
    assert variables[names.ENV_SERVICE_NAME] == names.SERVICE_NAME
    assert variables[names.ENV_IDEMPOTENCY_TABLE] == {"Ref": table_id}
    assert variables[names.ENV_TRACKING_TABLE] == {"Ref": tracking_id}
    assert variables[names.ENV_SUPPRESSION_TABLE] == {"Ref": suppression_id}
    assert variables[names.ENV_LOG_LEVEL] == "INFO"


def test_only_the_queue_and_scheduled_functions_know_the_dead_letter_queue(
    default_stack: Synthesized,
) -> None:
    # Given the functions
    api = function_by_handler(default_stack, names.API_HANDLER)["Environment"]["Variables"]
    queue = function_by_handler(default_stack, names.QUEUE_HANDLER)["Environment"]["Variables"]
    scheduled = function_by_handler(default_stack, names.SCHEDULED_HANDLER)["Environment"]["Variables"]
    dead_letter_queue_id = logical_id_by_name(
        default_stack, "AWS::SQS::Queue", "QueueName", names.DEAD_LETTER_QUEUE_NAME
    )
    queue_id = logical_id_by_name(default_stack, "AWS::SQS::Queue", "QueueName", names.QUEUE_NAME)

    # Then the queue function can park failures there at once, the scheduled function settles them
    # (deletes, or sends back to the queue), and the API function has no queue
    assert queue[names.ENV_DEAD_LETTER_QUEUE_URL] == {"Ref": dead_letter_queue_id}
    assert scheduled[names.ENV_DEAD_LETTER_QUEUE_URL] == {"Ref": dead_letter_queue_id}
    assert scheduled[names.ENV_QUEUE_URL] == {"Ref": queue_id}
    assert names.ENV_DEAD_LETTER_QUEUE_URL not in api
    assert names.ENV_QUEUE_URL not in api


def test_every_function_publishes_and_only_the_scheduled_one_checks_the_balance(
    default_stack: Synthesized, alternative_stack: Synthesized
) -> None:
    # Given the functions of the default stack
    (bus_id,) = default_stack.resources("AWS::Events::EventBus")
    scheduled = function_by_handler(default_stack, names.SCHEDULED_HANDLER)["Environment"]["Variables"]
    api = function_by_handler(default_stack, names.API_HANDLER)["Environment"]["Variables"]
    queue = function_by_handler(default_stack, names.QUEUE_HANDLER)["Environment"]["Variables"]

    # Then the scheduled function publishes on the stage's bus, with the default balance threshold
    assert scheduled[names.ENV_EVENT_BUS_NAME] == {"Ref": bus_id}
    assert scheduled[names.ENV_LOW_BALANCE_EUROS] == "10"
    # And the API function publishes on the same bus (the suppression list's changes)
    assert api[names.ENV_EVENT_BUS_NAME] == {"Ref": bus_id}
    assert names.ENV_LOW_BALANCE_EUROS not in api
    # And the queue function on the same bus too (Send Scheduled, for queued messages with send_at)
    assert queue[names.ENV_EVENT_BUS_NAME] == {"Ref": bus_id}
    assert names.ENV_LOW_BALANCE_EUROS not in queue
    # And the alternative stage's threshold comes from its context
    other = function_by_handler(alternative_stack, names.SCHEDULED_HANDLER)["Environment"]["Variables"]
    assert other[names.ENV_LOW_BALANCE_EUROS] == str(alternative_stack.context["lowBalanceEuros"])


def test_a_failed_scheduled_run_is_kept_not_retried(default_stack: Synthesized) -> None:
    # Given the scheduled function (invoked asynchronously by its schedules)
    function_id = next(
        logical_id
        for logical_id, resource in default_stack.resources("AWS::Lambda::Function").items()
        if resource["Properties"]["Handler"] == names.SCHEDULED_HANDLER
    )
    function = default_stack.resources("AWS::Lambda::Function")[function_id]["Properties"]
    failed_runs_id = logical_id_by_name(
        default_stack, "AWS::SQS::Queue", "QueueName", f"{names.SERVICE_NAME}-scheduled-failed"
    )

    # Then a run that raised is not retried (the next tick runs anyway), and its event is kept
    assert function["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [failed_runs_id, "Arn"]}}
    (invoke_config,) = [
        props
        for props in default_stack.properties("AWS::Lambda::EventInvokeConfig")
        if props["FunctionName"] == {"Ref": function_id}
    ]
    # (on the alias the schedules invoke: a setting on $LATEST would not apply to it)
    (alias_id,) = [
        logical_id
        for logical_id, resource in default_stack.resources("AWS::Lambda::Alias").items()
        if resource["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    assert invoke_config["Qualifier"] == {"Fn::Select": [7, {"Fn::Split": [":", {"Ref": alias_id}]}]}
    assert invoke_config["MaximumRetryAttempts"] == 0
    # And one run per task at a time, with room for an on-demand reconcile
    assert function["ReservedConcurrentExecutions"] == 5


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


def test_the_runtime_is_the_newest_python_the_build_can_compile_for() -> None:
    # Given the runtime version in cdk.json, and the one the Makefile builds for
    version = cdk_json_context()["lambdaPythonVersion"]
    made = subprocess.run(
        ["make", "-s", "lambda-python-version"], cwd=REPO, capture_output=True, text=True, check=True
    )

    # Then both are the same one, at least 3.13 (the newest CI and developers have, with pyenv)
    assert made.stdout.strip() == version
    assert tuple(int(part) for part in version.split(".")) >= (3, 13)
    # And a Python of that version is here to compile the bytecode (a 3.14 runtime would
    # ignore 3.13's bytecode, and no 3.14 is to be had on these machines)
    assert artifacts.find_interpreter(version).version == version


def test_a_runtime_version_without_its_python_stops_the_build_with_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a runtime version no interpreter here can compile for (nor does LAMBDA_BUILD_PYTHON help)
    monkeypatch.setenv("LAMBDA_BUILD_PYTHON", "")
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))

    # When the layer is built for it
    completed = subprocess.run(
        [
            *[sys.executable, "-m", "infra.artifacts", "layer"],
            *["--python-version", "3.99", "--out", str(tmp_path / "layer")],
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )

    # Then it stops before downloading anything, says why and what to do, and leaves no layer
    assert completed.returncode == 1
    assert "no Python 3.99 found" in completed.stderr
    assert "LAMBDA_PYTHON_VERSION=" in completed.stderr
    assert not (tmp_path / "layer").exists()
    assert not (tmp_path / "layer.partial").exists()


def _fake_layer(root: Path, *, version: str, key: str | None = None) -> Path:
    layer_dir = root / "build" / "layer"
    (layer_dir / "python").mkdir(parents=True)
    if key is None:  # a runtime with no lock (3.12) gets a key no build would make
        locked = artifacts.layer_lock(version).is_file()
        key = artifacts.layer_key(version, artifacts.LAMBDA_PLATFORM) if locked else "no lock"
    stamp = {"python_version": version, "key": key}
    (layer_dir / artifacts.STAMP_NAME).write_text(json.dumps(stamp))
    return layer_dir


def test_without_the_placeholder_flag_the_built_layer_is_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given no built layer (make build not run) and no placeholderLayer flag
    monkeypatch.setattr(function_component, "LAYER_DIR", tmp_path / "build" / "layer")

    # When the layer is defined, as `make synth` and `make deploy` define it
    # Then synthesis stops and says how to build it
    with pytest.raises(ConfigError, match=r"build/layer/python does not exist: run `make build`"):
        DependencyLayer(Stack(App()), "Dependencies", config=GatewayConfig())


@pytest.mark.parametrize(
    ("stamp_version", "stamp_key", "message"),
    [
        ("3.12", None, r"built for Python 3.12, but the runtime is python3.13.*LAMBDA_PYTHON_VERSION=3.13"),
        (
            "3.13",
            "0" * 64,
            r"out of date \(its lock of requirements.txt or the recipe changed\): run `make build`",
        ),
    ],
)
def test_a_layer_built_for_another_runtime_or_requirements_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stamp_version: str, stamp_key: str | None, message: str
) -> None:
    # Given a layer whose stamp says another Python, or a build key of other requirements
    layer_dir = _fake_layer(tmp_path, version=stamp_version, key=stamp_key)
    monkeypatch.setattr(function_component, "LAYER_DIR", layer_dir)

    # When the layer is defined for the python3.13 runtime
    # Then synthesis stops with what to do
    with pytest.raises(ConfigError, match=message):
        DependencyLayer(Stack(App()), "Dependencies", config=GatewayConfig(lambda_python_version="3.13"))


def test_without_the_placeholder_flag_the_built_layer_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a layer built for the runtime from today's requirements
    monkeypatch.setattr(function_component, "LAYER_DIR", _fake_layer(tmp_path, version="3.13"))

    # When the layer is defined without the placeholder flag
    layer = DependencyLayer(Stack(App()), "Dependencies", config=GatewayConfig(lambda_python_version="3.13"))

    # Then it is the real one, described as such
    description = layer.layer.node.default_child.description  # type: ignore[union-attr]
    assert "PLACEHOLDER" not in description
    assert "dependencies" in description
    assert "python3.13 bytecode" in description


def test_function_code_is_the_sources_with_their_runtime_bytecode(tmp_path: Path) -> None:
    # Given a code directory with the host's bytecode and tool caches next to the sources
    source = tmp_path / "functions"
    (source / "gateway" / "__pycache__").mkdir(parents=True)
    (source / ".mypy_cache").mkdir()
    (source / "handler.py").write_text("VALUE = 1\n")
    (source / "gateway" / "send.py").write_text("def send() -> None: ...\n")
    (source / "gateway" / "__pycache__" / "send.cpython-311.pyc").write_bytes(b"host bytecode")
    (source / ".mypy_cache" / "cache.db").write_bytes(b"")
    (source / "stray.pyc").write_bytes(b"")

    # When it is staged as the function code asset for python3.13
    staged = artifacts.stage_function_code("3.13", source=source, into=tmp_path / "staged")

    # Then the sources and their checked-hash bytecode for 3.13 are shipped, nothing else
    shipped = sorted(path.relative_to(staged).as_posix() for path in staged.rglob("*") if path.is_file())
    assert shipped == [
        "__pycache__/handler.cpython-313.pyc",
        "gateway/__pycache__/send.cpython-313.pyc",
        "gateway/send.py",
        "handler.py",
    ]
    flags = int.from_bytes((staged / "__pycache__" / "handler.cpython-313.pyc").read_bytes()[4:8], "little")
    assert flags == 0b11  # hash-based, checked against the source
    # And staging the same sources again reuses the same folder
    assert artifacts.stage_function_code("3.13", source=source, into=tmp_path / "staged") == staged


def test_the_functions_ship_the_staged_code(default_stack: Synthesized) -> None:
    # Given the code asset of the synthesized functions
    (asset_hash,) = {
        props["Code"]["S3Key"].removesuffix(".zip")
        for props in default_stack.properties("AWS::Lambda::Function")
    }
    asset_dir = default_stack.outdir / f"asset.{asset_hash}"

    # Then it holds every source file of functions/, each with its bytecode for the runtime
    sources = {path.as_posix() for path in artifacts.function_code_files(REPO / "functions")}
    shipped = {path.relative_to(asset_dir).as_posix() for path in asset_dir.rglob("*") if path.is_file()}
    tag = f"cpython-{DEFAULT_LAMBDA_PYTHON_VERSION.replace('.', '')}"
    expected_bytecode = {
        (Path(source).parent / "__pycache__" / f"{Path(source).stem}.{tag}.pyc").as_posix()
        for source in sources
        if source.endswith(".py")
    }
    assert shipped == sources | expected_bytecode


def _pruned_phonenumbers_modules() -> set[str]:
    return {
        pattern.removeprefix("phonenumbers/").split(".")[0]
        for pattern in artifacts.PRUNE
        if pattern.startswith("phonenumbers/")
    }


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
    # Given what `make build` removes from phonenumbers (geocoder, carrier)
    pruned = _pruned_phonenumbers_modules()
    assert {"geocoder", "carrier"} <= pruned

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
    source = "import phonenumbers\nfrom phonenumbers import geocoder\nphonenumbers.carrier.x()\n"

    # Then the check above would notice it
    assert {"geocoder", "carrier"} <= _phonenumbers_names_used(source)


@pytest.mark.parametrize(("stack_name", "cap"), [("default_stack", 40), ("alternative_stack", 25)])
def test_the_api_function_has_a_concurrency_cap(
    request: pytest.FixtureRequest, stack_name: str, cap: int
) -> None:
    # Given the stack with the default cap, and one with apiReservedConcurrency=25
    stack: Synthesized = request.getfixturevalue(stack_name)

    # Then the API function may never run more than that many at once, whatever the provider does
    assert function_by_handler(stack, names.API_HANDLER)["ReservedConcurrentExecutions"] == cap
    # And the queue function is bounded by its event source mappings instead (messages, schedule
    # triggers)
    assert "ReservedConcurrentExecutions" not in function_by_handler(stack, names.QUEUE_HANDLER)
    mappings = stack.properties("AWS::Lambda::EventSourceMapping")
    assert len(mappings) == 2
    assert all(mapping["ScalingConfig"]["MaximumConcurrency"] >= 2 for mapping in mappings)
