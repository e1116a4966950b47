"""Logger, Tracer and Metrics, created once for every function (one namespace, one
correlation id: the ``changeId``). Handlers decorate in the same order everywhere:
``@logger.inject_lambda_context`` → ``@tracer.capture_lambda_handler`` → ``@metrics.log_metrics``."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

from configpipe.metrics import NAMESPACE

logger = Logger(log_uncaught_exceptions=True)
# Only botocore is patched: it is the one traced library the functions call. Patching every
# library X-Ray supports (the default) imports each of them at cold start, and its httplib
# patch only repeats the botocore subsegments one level down.
tracer = Tracer(patch_modules=("botocore",))
metrics = Metrics(namespace=NAMESPACE)
