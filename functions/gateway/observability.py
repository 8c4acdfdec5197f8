"""The one place that creates the Logger, Metrics and Tracer.

They are created at import (Powertools decorators need them); `configure`
applies the validated settings once, at cold start.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncGenerator, Generator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.shared import constants as powertools_env
from aws_lambda_powertools.shared.functions import strtobool
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

from gateway import names
from gateway.settings import Settings


def tracing_enabled() -> bool:
    """Powertools' own rule: traces in Lambda (not SAM/Chalice local) unless POWERTOOLS_TRACE_DISABLED."""
    if strtobool(os.getenv(powertools_env.TRACER_DISABLED_ENV, "false")):
        return False
    in_lambda = bool(os.getenv(powertools_env.LAMBDA_TASK_ROOT_ENV))
    emulated = bool(os.getenv(powertools_env.SAM_LOCAL_ENV) or os.getenv(powertools_env.CHALICE_LOCAL_ENV))
    return in_lambda and not emulated


class _NoSegment(BaseSegment):
    def close(self, end_time: int | None = None) -> None: ...
    def add_subsegment(self, subsegment: Any) -> None: ...
    def remove_subsegment(self, subsegment: Any) -> None: ...
    def put_annotation(self, key: str, value: Any) -> None: ...
    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None: ...
    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None: ...


class NoTracing(BaseProvider):
    """The tracer's provider when tracing is off.

    Powertools' default provider is the X-Ray SDK even then, and outside Lambda
    its recorder builds botocore X-Ray clients for its sampler at import: about
    150 ms of a local cold start, for traces nobody will send.
    """

    _segment = _NoSegment()

    @contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Generator[BaseSegment, None, None]:
        yield self._segment

    @asynccontextmanager
    async def in_subsegment_async(
        self, name: str | None = None, **kwargs: Any
    ) -> AsyncGenerator[BaseSegment, None]:
        yield self._segment

    def put_annotation(self, key: str, value: Any) -> None: ...
    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None: ...
    def patch(self, modules: Sequence[str]) -> None: ...
    def patch_all(self) -> None: ...


_metrics_lock = threading.Lock()
logger = Logger(service=names.SERVICE_NAME)
metrics = Metrics(service=names.SERVICE_NAME, namespace=names.DEFAULT_METRICS_NAMESPACE)
tracer = Tracer(service=names.SERVICE_NAME, provider=None if tracing_enabled() else NoTracing())


def configure(settings: Settings) -> None:
    metrics.namespace = settings.metrics_namespace


def count(name: str, value: float = 1) -> None:
    # Records of one batch are sent from several threads; Metrics' metric set is shared.
    with _metrics_lock:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


# Units for gauges: seconds, or a plain number (euros are not a CloudWatch unit).
SECONDS = MetricUnit.Seconds
NO_UNIT = MetricUnit.NoUnit
COUNT = MetricUnit.Count


def gauge(name: str, value: float, unit: MetricUnit = SECONDS) -> None:
    """A value measured now (not a count): emitted at once, on its own."""
    with single_metric(
        name=name,
        unit=unit,
        value=value,
        namespace=metrics.namespace,
        default_dimensions={"service": metrics.service},
    ):
        pass


def count_by(name: str, dimension: str, dimension_value: str, value: float = 1) -> None:
    """Emit a metric with a dimension of its own now, leaving the handler's shared metrics alone."""
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=value,
        namespace=metrics.namespace,
        default_dimensions={"service": metrics.service},
    ) as metric:
        metric.add_dimension(name=dimension, value=dimension_value)
