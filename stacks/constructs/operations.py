"""Operations: an alarm on every dead-letter queue and every function's errors, the stream's
iterator age, one notification topic, and the pipeline dashboard (its outcome rows are built
from the metric lists in ``configpipe.metrics``, so every metric a function emits is on it)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from configpipe.metrics import (
    DRIFT_DETECTED,
    DRIFT_METRICS,
    LEDGER_METRICS,
    NAMESPACE,
    PIPELINE_METRICS,
    RELEASE_METRICS,
    ROLLOUT_METRICS,
)
from stacks.constructs.dead_letters import DeadLetterQueue
from stacks.constructs.observed_function import ObservedFunction

#: A record older than this has been failing for a while; the stream keeps it only 24 h.
ITERATOR_AGE_ALARM = Duration.minutes(5)
PERIOD = Duration.minutes(1)


class Operations(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alarm_key: kms.IKey,
        functions: Sequence[ObservedFunction],
        dead_letter_queues: Sequence[DeadLetterQueue],
        stream_consumer: ObservedFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self, "AlarmTopic", display_name="configpipe alarms", master_key=alarm_key, enforce_ssl=True
        )
        notify = actions.SnsAction(self.topic)
        self.alarms: list[cloudwatch.Alarm] = []

        for queue in dead_letter_queues:
            alarm = queue.metric_approximate_number_of_messages_visible(
                period=PERIOD, statistic="Maximum"
            ).create_alarm(
                queue,
                "NotEmpty",
                alarm_description=f"configpipe: messages parked in the DLQ of {queue.failure_path}",
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            self._notify(alarm, notify)

        for fn in functions:
            alarm = fn.function.metric_errors(period=PERIOD, statistic="Sum").create_alarm(
                fn,
                "Errors",
                alarm_description=f"configpipe: {fn.node.id} invocations failed",
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            self._notify(alarm, notify)

        iterator_age = stream_consumer.function.metric(
            "IteratorAge", period=PERIOD, statistic="Maximum", unit=cloudwatch.Unit.MILLISECONDS
        )
        self._notify(
            iterator_age.create_alarm(
                stream_consumer,
                "IteratorAge",
                alarm_description="configpipe: the materialiser is falling behind the change log stream",
                threshold=ITERATOR_AGE_ALARM.to_milliseconds(),
                evaluation_periods=3,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            notify,
        )

        # issue 14: a store was found differing from the change log (docs/operations.md, "Drift")
        self.drift_alarm = cloudwatch.Metric(
            namespace=NAMESPACE, metric_name=DRIFT_DETECTED, statistic="Sum", period=PERIOD
        ).create_alarm(
            self,
            "DriftDetected",
            alarm_description="configpipe: a parameter or secret differed from the change log (drift)",
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self._notify(self.drift_alarm, notify)

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name="configpipe")
        # One row per emitter: the EMF metrics (Powertools Metrics) the functions emit.
        for title, names in (
            ("Pipeline outcomes", PIPELINE_METRICS),
            ("Config rollout outcomes", ROLLOUT_METRICS),
            ("Release outcomes", RELEASE_METRICS),
            ("Drift reconcile", DRIFT_METRICS),
            ("Delivery ledger (acknowledgements)", LEDGER_METRICS),
        ):
            self.dashboard.add_widgets(
                cloudwatch.GraphWidget(
                    title=title,
                    width=24,
                    left=[
                        cloudwatch.Metric(
                            namespace=NAMESPACE, metric_name=name, statistic="Sum", period=PERIOD
                        )
                        for name in names
                    ],
                )
            )
        for title, metric in (
            ("Invocations", lambda f: f.metric_invocations(period=PERIOD)),
            ("Errors", lambda f: f.metric_errors(period=PERIOD)),
            ("Duration p99", lambda f: f.metric_duration(period=PERIOD, statistic="p99")),
        ):
            self.dashboard.add_widgets(
                cloudwatch.GraphWidget(
                    title=title,
                    width=24,
                    left=[metric(fn.function).with_(label=fn.node.id) for fn in functions],
                )
            )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Dead-letter queue depth",
                width=12,
                left=[
                    q.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum").with_(
                        label=q.node.id
                    )
                    for q in dead_letter_queues
                ],
            ),
            cloudwatch.GraphWidget(title="Change-log stream iterator age", width=12, left=[iterator_age]),
            cloudwatch.AlarmStatusWidget(title="Alarms", width=24, alarms=list(self.alarms)),
        )

    def _notify(self, alarm: cloudwatch.Alarm, notify: actions.SnsAction) -> None:
        alarm.add_alarm_action(notify)
        self.alarms.append(alarm)
