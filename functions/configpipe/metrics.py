"""The CloudWatch namespace every function emits into (EMF, through Powertools Metrics) and
the name of every metric they emit: handlers and the release service name metrics only
through these constants, and the stack's dashboard is built from :data:`PIPELINE_METRICS`
, :data:`ROLLOUT_METRICS` and :data:`RELEASE_METRICS`.

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
#: Stream records no retry could materialise (malformed, or naming items the log lacks).
STREAM_RECORDS_REFUSED = "StreamRecordsRefused"
ROLLOUT_EVENTS_ANNOUNCED = "RolloutEventsAnnounced"
# --- propagator ---------------------------------------------------------------------------
DELIVERIES_SUCCEEDED = "DeliveriesSucceeded"
DELIVERIES_FAILED = "DeliveriesFailed"
#: Events refused by the propagator: not an announcement the pipeline could have made.
ANNOUNCEMENTS_REFUSED = "AnnouncementsRefused"
# --- release manager ----------------------------------------------------------------------
RELEASE_STARTED = "ReleaseStarted"
RELEASE_REJECTED = "ReleaseRejected"
RELEASE_STEPPED = "ReleaseStepped"
RELEASE_COMPLETED = "ReleaseCompleted"
RELEASE_ROLLED_BACK = "ReleaseRolledBack"
RELEASE_ABORTED = "ReleaseAborted"
RELEASE_CONCURRENT_CHANGE = "ReleaseConcurrentChange"
#: the scheduled version prune (issue 16)
VERSIONS_PRUNED = "VersionsPruned"
VERSION_PRUNES_FAILED = "VersionPrunesFailed"

# --- rollout function ---------------------------------------------------------------------
ROLLOUTS_RECONCILED = "RolloutsReconciled"
ROLLOUT_STEPPED = "RolloutStepped"
ROLLOUT_COMPLETED = "RolloutCompleted"
ROLLOUT_ROLLED_BACK = "RolloutRolledBack"
ROLLOUT_CONTROLS_ACCEPTED = "RolloutControlsAccepted"
ROLLOUT_CONTROLS_REJECTED = "RolloutControlsRejected"
ROLLOUT_CONTROLS_DUPLICATE = "RolloutControlsDuplicate"

# --- drift reconcile (issue 14) ---------------------------------------------------------
#: Keys found differing from the change log, keys re-materialised and then checked clean, and
#: reconciles that failed (their keys unchecked). DRIFT_DETECTED has its own alarm.
DRIFT_DETECTED = "DriftDetected"
DRIFT_REPAIRED = "DriftRepaired"
KEYS_RECONCILED = "KeysReconciled"
DRIFT_CHECKS_FAILED = "DriftChecksFailed"
# --- delivery ledger (issue 14) -----------------------------------------------------------
#: Acknowledgements that moved the ledger (an applied or refused version newer than it held).
ACKS_RECORDED = "AcksRecorded"
#: Duplicates and out-of-order acknowledgements: the ledger already held something as new.
ACKS_STALE = "AcksStale"
#: A service's own check refused a version (it keeps the last good one): alarmed.
ACKS_REFUSED = "AcksRefused"
#: Events on the ack rule that are not an acknowledgement, or whose source is not the
#: acknowledging service's own (a forged ack).
ACKS_REJECTED = "AcksRejected"

#: What the configuration pipeline (validator, materialiser, propagator) emits.
PIPELINE_METRICS = (
    CHANGES_ACCEPTED,
    CHANGES_REJECTED,
    CHANGES_DUPLICATE,
    CONFIGURATIONS_MATERIALISED,
    UPDATES_ANNOUNCED,
    MATERIALISATION_FAILURES,
    STREAM_RECORDS_REFUSED,
    ROLLOUT_EVENTS_ANNOUNCED,
    DELIVERIES_SUCCEEDED,
    DELIVERIES_FAILED,
    ANNOUNCEMENTS_REFUSED,
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
    VERSIONS_PRUNED,
    VERSION_PRUNES_FAILED,
)
#: What the rollout function emits.
ROLLOUT_METRICS = (
    ROLLOUTS_RECONCILED,
    ROLLOUT_STEPPED,
    ROLLOUT_COMPLETED,
    ROLLOUT_ROLLED_BACK,
    ROLLOUT_CONTROLS_ACCEPTED,
    ROLLOUT_CONTROLS_REJECTED,
    ROLLOUT_CONTROLS_DUPLICATE,
)
#: What the drift reconcile emits.
DRIFT_METRICS = (DRIFT_DETECTED, DRIFT_REPAIRED, KEYS_RECONCILED, DRIFT_CHECKS_FAILED)
#: What the delivery-ledger function emits.
LEDGER_METRICS = (ACKS_RECORDED, ACKS_STALE, ACKS_REFUSED, ACKS_REJECTED)
#: Every metric any function emits.
ALL_METRICS = PIPELINE_METRICS + ROLLOUT_METRICS + RELEASE_METRICS + DRIFT_METRICS + LEDGER_METRICS
