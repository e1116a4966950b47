"""The CloudWatch namespace every function emits into (EMF, through Powertools Metrics) and
the name of every metric they emit: handlers and the release service name metrics only
through these constants, and the stack's dashboard is built from :data:`PIPELINE_METRICS`
and :data:`RELEASE_METRICS`.

Plain constants: the stack reads them at synth time (the dashboard, alarms) without
building a Logger, Tracer or Metrics object."""

from __future__ import annotations

NAMESPACE = "configpipe"

# --- validator ----------------------------------------------------------------------------
CHANGES_ACCEPTED = "ChangesAccepted"
#: Emitted by the validator (bad input) and the materialiser (a change rejected at materialise time).
CHANGES_REJECTED = "ChangesRejected"
CHANGES_DUPLICATE = "ChangesDuplicate"
# --- materialiser -------------------------------------------------------------------------
CONFIGURATIONS_MATERIALISED = "ConfigurationsMaterialised"
UPDATES_ANNOUNCED = "UpdatesAnnounced"
MATERIALISATION_FAILURES = "MaterialisationFailures"
# --- propagator ---------------------------------------------------------------------------
DELIVERIES_SUCCEEDED = "DeliveriesSucceeded"
DELIVERIES_FAILED = "DeliveriesFailed"
# --- release manager ----------------------------------------------------------------------
RELEASE_STARTED = "ReleaseStarted"
RELEASE_REJECTED = "ReleaseRejected"
RELEASE_STEPPED = "ReleaseStepped"
RELEASE_COMPLETED = "ReleaseCompleted"
RELEASE_ROLLED_BACK = "ReleaseRolledBack"
RELEASE_ABORTED = "ReleaseAborted"
RELEASE_CONCURRENT_CHANGE = "ReleaseConcurrentChange"

#: What the configuration pipeline (validator, materialiser, propagator) emits.
PIPELINE_METRICS = (
    CHANGES_ACCEPTED,
    CHANGES_REJECTED,
    CHANGES_DUPLICATE,
    CONFIGURATIONS_MATERIALISED,
    UPDATES_ANNOUNCED,
    MATERIALISATION_FAILURES,
    DELIVERIES_SUCCEEDED,
    DELIVERIES_FAILED,
)
#: What the release manager emits.
RELEASE_METRICS = (
    RELEASE_STARTED,
    RELEASE_REJECTED,
    RELEASE_STEPPED,
    RELEASE_COMPLETED,
    RELEASE_ROLLED_BACK,
    RELEASE_ABORTED,
    RELEASE_CONCURRENT_CHANGE,
)
#: Every metric any function emits.
ALL_METRICS = PIPELINE_METRICS + RELEASE_METRICS
