"""The CloudWatch namespace every function emits into (EMF, through Powertools Metrics).

Plain constants: the stack reads them at synth time (the dashboard, alarms) without
building a Logger, Tracer or Metrics object."""

from __future__ import annotations

NAMESPACE = "configpipe"
