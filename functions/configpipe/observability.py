"""Logger, Tracer and Metrics, created once for every function (one namespace, one
correlation id: the ``changeId``). Handlers decorate in the same order everywhere:
``@logger.inject_lambda_context`` → ``@tracer.capture_lambda_handler`` → ``@metrics.log_metrics``."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

from configpipe.metrics import NAMESPACE

logger = Logger(log_uncaught_exceptions=True)
tracer = Tracer()
metrics = Metrics(namespace=NAMESPACE)
