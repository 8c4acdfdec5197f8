"""The one place that creates the Logger, Metrics and Tracer.

They are created at import (Powertools decorators need them); `configure`
applies the validated settings once, at cold start.
"""

from __future__ import annotations

import threading

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from gateway import names
from gateway.settings import Settings

_metrics_lock = threading.Lock()
logger = Logger(service=names.SERVICE_NAME)
metrics = Metrics(service=names.SERVICE_NAME, namespace=names.DEFAULT_METRICS_NAMESPACE)
tracer = Tracer(service=names.SERVICE_NAME)


def configure(settings: Settings) -> None:
    metrics.namespace = settings.metrics_namespace


def count(name: str, value: float = 1) -> None:
    # Records of one batch are sent from several threads; Metrics' metric set is shared.
    with _metrics_lock:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def count_by(name: str, dimension: str, dimension_value: str) -> None:
    """Emit a metric with a dimension of its own now, leaving the handler's shared metrics alone."""
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=1,
        namespace=metrics.namespace,
        default_dimensions={"service": metrics.service},
    ) as metric:
        metric.add_dimension(name=dimension, value=dimension_value)
