"""Issue 10, identity and least privilege: each control of docs/security.md, asserted on the
synthesised template. IAM evaluates these conditions only in an account; what is asserted here
is that the exact statement and condition are deployed (docs/security.md says what that leaves)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infrastructure.conftest import (
    actions_of,
    rendered,
    resources,
    resources_of,
    role_of,
    statements_of_role,
    the_function,
)

pytestmark = pytest.mark.infrastructure

REDRIVE_HANDLER = "configpipe.handlers.redrive.handler"


def _managed_policy(template_json: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    (policy,) = [
        p
        for p in resources(template_json, "AWS::IAM::ManagedPolicy").values()
        if p["Properties"].get("ManagedPolicyName") == name
    ]
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


# --- H1: no operator path around the validator ------------------------------------------------


def pipeline_dead_letter_queues(template_json: dict[str, Any]) -> set[str]:
    """Every queue but the registry's queue consumers' (``configpipe-sub-*`` and their DLQs):
    those belong to the consumer, hold announcements only, and are redriven by SQS's own
    message move (docs/consuming.md), not by the pipeline's redrive function."""
    return {
        logical_id
        for logical_id, queue in resources(template_json, "AWS::SQS::Queue").items()
        if not str(queue["Properties"].get("QueueName", "")).startswith("configpipe-sub-")
    }


def test_the_operator_may_invoke_the_redrive_function_and_no_other(template_json: dict[str, Any]) -> None:
    statements = _managed_policy(template_json, "configpipe-operator")
    redrive_id, _ = the_function(template_json, REDRIVE_HANDLER)
    # issue 14: and the drift reconcile, which takes no payload but a scope and writes only what
    # the change log holds
    drift_id, _ = the_function(template_json, "configpipe.handlers.drift.handler")

    invoking = [s for s in statements.values() if any(a.startswith("lambda:") for a in actions_of(s))]
    assert [actions_of(s) for s in invoking] == [["lambda:InvokeFunction"]] * 2
    assert sorted(str(resources_of(s)) for s in invoking) == sorted(
        str([{"Fn::GetAtt": [fid, "Arn"]}]) for fid in (redrive_id, drift_id)
    )


def test_the_operator_neither_reads_dead_letters_nor_changes_anything(template_json: dict[str, Any]) -> None:
    statements = _managed_policy(template_json, "configpipe-operator")
    every_action = {a for s in statements.values() for a in actions_of(s)}

    # Dead letters may hold a value (a change, a stream image): the redrive function reads them.
    assert every_action.isdisjoint(
        {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "dynamodb:GetRecords"}
    )
    assert not [
        a
        for a in every_action
        if a.startswith(("dynamodb:Put", "dynamodb:Update", "dynamodb:Delete", "ssm:", "secretsmanager:"))
        or a.startswith(("events:", "lambda:Update", "kms:Encrypt"))
    ]
    depth = {r["Fn::GetAtt"][0] for r in statements["SeeDeadLetterQueueDepth"]["Resource"]}
    # every DLQ's depth (the queue consumers' DLQs too: their alarms page the same on-call)
    consumer_dlqs = {
        logical_id
        for logical_id, queue in resources(template_json, "AWS::SQS::Queue").items()
        if str(queue["Properties"].get("QueueName", "")).startswith("configpipe-sub-")
        and str(queue["Properties"]["QueueName"]).endswith("-dlq")
    }
    assert consumer_dlqs and depth == pipeline_dead_letter_queues(template_json) | consumer_dlqs


def test_the_redrive_function_drains_every_dlq_and_invokes_only_the_functions_they_serve(
    template_json: dict[str, Any],
) -> None:
    redrive_id, _ = the_function(template_json, REDRIVE_HANDLER)
    statements = statements_of_role(template_json, role_of(template_json["Resources"][redrive_id]))

    (invoke,) = [s for s in statements if "lambda:InvokeFunction" in actions_of(s)]
    invoked = {r["Fn::GetAtt"][0] for r in resources_of(invoke)}
    every_other_function = set(resources(template_json, "AWS::Lambda::Function")) - {redrive_id}
    assert invoked == every_other_function  # each is the target of a DLQ; never itself
    (drain,) = [s for s in statements if "sqs:ReceiveMessage" in actions_of(s)]
    assert {r["Fn::GetAtt"][0] for r in resources_of(drain)} == pipeline_dead_letter_queues(template_json)
    assert "sqs:SendMessage" not in {a for s in statements for a in actions_of(s)}


def test_each_dlq_is_redriven_only_to_the_function_whose_failures_it_holds(
    template_json: dict[str, Any],
) -> None:
    _, function = the_function(template_json, REDRIVE_HANDLER)
    queue_map = json.loads(rendered(function["Properties"]["Environment"]["Variables"]["REDRIVE_QUEUES"]))
    by_path = {
        r.get("Metadata", {}).get("aws:cdk:path", ""): logical_id
        for logical_id, r in template_json["Resources"].items()
    }

    def queue(path: str) -> str:
        return f"<{by_path[f'ConfigPipe/{path}/Resource']}.QueueName>"

    def fn(path: str) -> str:
        return f"<{by_path[f'ConfigPipe/{path}/Function/Resource']}>"

    assert len(queue_map) == len(pipeline_dead_letter_queues(template_json))
    assert queue_map[queue("Routes/ChangesDlq")] == [fn("Pipeline/Validator")]
    assert queue_map[queue("Pipeline/ValidatorAsyncDlq")] == [fn("Pipeline/Validator")]
    assert queue_map[queue("Pipeline/StreamDlq")] == [fn("Pipeline/Materialiser")]
    assert queue_map[queue("Routes/UpdatesDlq")] == [fn("Pipeline/Propagator")]
    assert queue_map[queue("Pipeline/PropagatorAsyncDlq")] == [fn("Pipeline/Propagator")]
    assert queue_map[queue("Services/CheckoutAsyncDlq")] == [fn("Services/CheckoutHandler")]


def test_a_redriven_batch_that_fails_again_returns_to_the_stream_dlq(template_json: dict[str, Any]) -> None:
    # The redrive function re-delivers a stream batch by invoking the materialiser asynchronously;
    # without an on-failure destination, Lambda drops it after two retries (cdk-nag NIST LambdaDLQ).
    materialiser, _ = the_function(template_json, "configpipe.handlers.materialiser.handler")
    (config,) = [
        c["Properties"]
        for c in resources(template_json, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": materialiser}
    ]
    queue = config["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    path = template_json["Resources"][queue]["Metadata"]["aws:cdk:path"]
    assert path == "ConfigPipe/Pipeline/StreamDlq/Resource"


def test_the_redrive_function_is_an_output_for_the_cli(template_json: dict[str, Any]) -> None:
    redrive_id, _ = the_function(template_json, REDRIVE_HANDLER)
    assert template_json["Outputs"]["RedriveFunctionName"]["Value"] == {"Ref": redrive_id}


# --- H2: a team is the caller's tag, not a source string --------------------------------------


def _bus_statements(template_json: dict[str, Any]) -> list[dict[str, Any]]:
    (bus,) = resources(template_json, "AWS::Events::EventBus").values()
    statements: list[dict[str, Any]] = bus["Properties"]["Policy"]["Statement"]
    return statements


@pytest.mark.parametrize("team", ["checkout", "payments", "search", "platform"])
def test_the_bus_denies_a_team_source_to_every_principal_not_tagged_as_that_team(
    template_json: dict[str, Any], team: str
) -> None:
    denies = [
        s
        for s in _bus_statements(template_json)
        if s["Effect"] == "Deny"
        and s["Condition"].get("ForAnyValue:StringEquals") == {"events:source": [f"configpipe.team.{team}"]}
    ]
    assert len(denies) == 1
    (deny,) = denies
    assert deny["Principal"] == {"AWS": "*"} and deny["Action"] == "events:PutEvents"
    # StringNotEquals on a missing tag is true, so an untagged principal is denied as well.
    assert deny["Condition"]["StringNotEquals"] == {"aws:PrincipalTag/configpipe-team": team}
    assert set(deny["Condition"]) == {"ForAnyValue:StringEquals", "StringNotEquals"}


def test_every_registered_team_source_is_bound_and_nothing_else(template_json: dict[str, Any]) -> None:
    bound = sorted(
        s["Condition"]["ForAnyValue:StringEquals"]["events:source"][0]
        for s in _bus_statements(template_json)
        if s["Effect"] == "Deny"
        and "aws:PrincipalTag/configpipe-team" in s["Condition"].get("StringNotEquals", {})
    )
    assert bound == [f"configpipe.team.{t}" for t in ("checkout", "payments", "platform", "search")]


def test_a_publisher_policy_publishes_only_for_its_own_tag(template_json: dict[str, Any]) -> None:
    for team in ("checkout", "platform"):
        statements = _managed_policy(template_json, f"configpipe-publisher-{team}")
        condition = statements["PublishAsOwnSource"]["Condition"]["StringEquals"]
        assert condition["aws:PrincipalTag/configpipe-team"] == team


# --- M3: team changes are encrypted under our key on the bus and in their DLQs ----------------


def _by_path(template_json: dict[str, Any], path: str) -> str:
    (found,) = [
        logical_id
        for logical_id, r in template_json["Resources"].items()
        if r.get("Metadata", {}).get("aws:cdk:path") == f"ConfigPipe/{path}"
    ]
    return found


def test_the_bus_and_its_archive_use_the_events_key(template_json: dict[str, Any]) -> None:
    key = _by_path(template_json, "Keys/EventsKey/Resource")
    (bus,) = resources(template_json, "AWS::Events::EventBus").values()
    (archive,) = resources(template_json, "AWS::Events::Archive").values()
    assert bus["Properties"]["KmsKeyIdentifier"] == {"Fn::GetAtt": [key, "Arn"]}
    assert rendered(archive["Properties"]["KmsKeyIdentifier"]) in (f"<{key}.Arn>", f"<{key}>")


def test_the_dlqs_that_may_hold_a_team_change_use_the_events_key(template_json: dict[str, Any]) -> None:
    key = _by_path(template_json, "Keys/EventsKey/Resource")
    for path in ("Routes/ChangesDlq/Resource", "Pipeline/ValidatorAsyncDlq/Resource"):
        queue = template_json["Resources"][_by_path(template_json, path)]["Properties"]
        assert queue["KmsMasterKeyId"] == {"Fn::GetAtt": [key, "Arn"]}, path
        assert "SqsManagedSseEnabled" not in queue


def test_eventbridge_may_use_the_events_key_only_for_this_bus_and_its_rules(
    template_json: dict[str, Any],
) -> None:
    key = template_json["Resources"][_by_path(template_json, "Keys/EventsKey/Resource")]
    service = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s["Principal"].get("Service")]
    assert {s["Principal"]["Service"] for s in service} == {"events.amazonaws.com"}
    bus = "arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:event-bus/configpipe-config-bus"
    rules = "arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:rule/configpipe-config-bus/*"
    for statement in service:
        if actions_of(statement) == ["kms:DescribeKey"]:
            continue  # metadata only
        condition = {k: v for op in statement["Condition"].values() for k, v in op.items()}
        scoped_to = {
            rendered(condition.get("aws:SourceArn", "")),
            rendered(condition.get("kms:EncryptionContext:aws:events:event-bus:arn", "")),
        } - {""}
        assert scoped_to, statement  # never EventBridge at large: this bus, or its rules
        assert scoped_to <= {bus, rules, f"<{_by_path(template_json, 'ConfigBus/Bus/Resource')}.Arn>"}


def test_the_validator_refuses_clear_secrets_unless_the_context_allows_them(
    template_json: dict[str, Any],
) -> None:
    from configpipe.settings import ValidatorSettings
    from stacks.settings import PipelineSettings
    from tests.infrastructure.conftest import cdk_context

    _, validator = the_function(template_json, "configpipe.handlers.validator.handler")
    variables = validator["Properties"]["Environment"]["Variables"]
    assert "ALLOW_SENSITIVE_VALUES_IN_CLEAR" not in variables  # absent: False
    assert ValidatorSettings.model_fields["sensitive_values_in_clear"].default is False
    context = cdk_context()["configpipe"]
    assert PipelineSettings.from_context(context).allow_sensitive_values_in_clear is False
    allowed = PipelineSettings.from_context({**context, "allowSensitiveValuesInClear": True})
    assert allowed.allow_sensitive_values_in_clear is True


# --- M4: the secrets key decrypts directly only for the functions that need it --------------


def test_the_secrets_key_denies_a_direct_decrypt_to_all_but_four_functions(
    template_json: dict[str, Any], ids: dict[str, str]
) -> None:
    key = template_json["Resources"][ids["secrets_key"]]["Properties"]["KeyPolicy"]["Statement"]
    (deny,) = [s for s in key if s["Effect"] == "Deny"]
    assert deny["Principal"] == {"AWS": "*"} and deny["Action"] == "kms:Decrypt"
    exempt = {rendered(arn) for arn in deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]}
    assert exempt == {
        f"<{_by_path(template_json, path)}.Arn>"
        for path in (
            "Pipeline/Validator/Role/Resource",
            "Pipeline/Materialiser/Role/Resource",
            "Rollouts/Function/Role/Resource",
            "Drift/Function/Role/Resource",  # issue 14: re-materialises a secret
        )
    }
    assert {rendered(v) for v in deny["Condition"]["StringNotEquals"]["kms:ViaService"]} == {
        "dynamodb.<AWS::Region>.amazonaws.com",
        "secretsmanager.<AWS::Region>.amazonaws.com",
    }
    assert deny["Condition"]["BoolIfExists"] == {"aws:PrincipalIsAWSService": "false"}


# --- lows -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["materialiser_role", "propagator_role"])
def test_the_announcers_may_put_events_only_with_the_pipeline_source(
    template_json: dict[str, Any], ids: dict[str, str], role: str
) -> None:
    statements = statements_of_role(template_json, ids[role])
    (put,) = [s for s in statements if "events:PutEvents" in actions_of(s)]
    assert put["Condition"] == {"ForAllValues:StringEquals": {"events:source": ["configpipe.pipeline"]}}


def test_cloudwatch_may_use_the_alarm_key_only_for_this_accounts_alarms(
    template_json: dict[str, Any],
) -> None:
    key = template_json["Resources"][_by_path(template_json, "Keys/AlarmTopicKey/Resource")]
    (cloudwatch,) = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s["Principal"].get("Service") == "cloudwatch.amazonaws.com"
    ]
    assert cloudwatch["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert rendered(cloudwatch["Condition"]["ArnLike"]["aws:SourceArn"]) == (
        "arn:<AWS::Partition>:cloudwatch:<AWS::Region>:<AWS::AccountId>:alarm:*"
    )


@pytest.mark.parametrize("policy", ["configpipe-publisher-checkout", "configpipe-operator"])
def test_change_log_readers_may_decrypt_only_through_dynamodb(
    template_json: dict[str, Any], ids: dict[str, str], policy: str
) -> None:
    decrypt = _managed_policy(template_json, policy)["DecryptChangeLogThroughDynamoDB"]
    assert actions_of(decrypt) == ["kms:Decrypt"]
    assert resources_of(decrypt) == [{"Fn::GetAtt": [ids["secrets_key"], "Arn"]}]
    assert (
        rendered(decrypt["Condition"]["StringEquals"]["kms:ViaService"])
        == "dynamodb.<AWS::Region>.amazonaws.com"
    )


def test_a_team_reads_only_its_own_and_global_partitions_of_the_change_log(
    template_json: dict[str, Any],
) -> None:
    # M2: no reading another team's hashes (or anything else) in the change log.
    read = _managed_policy(template_json, "configpipe-publisher-checkout")["ReadChangeLog"]
    assert read["Condition"] == {
        "ForAllValues:StringLike": {
            "dynamodb:LeadingKeys": [
                "KEY#checkout#*",
                "KEY#global#*",
                "SCOPE#checkout#*",
                "SCOPE#global#*",
                "CHANGE#*",
            ]
        }
    }


# --- M1: watching is scoped to the team and to pipeline announcements -------------------------


def test_a_team_watches_with_its_own_rules_and_queues_only(template_json: dict[str, Any]) -> None:
    statements = _managed_policy(template_json, "configpipe-publisher-checkout")
    rule, target, queue = (
        statements["WatchWithTemporaryRule"],
        statements["WatchTargetsOwnQueueOnly"],
        statements["WatchWithTemporaryQueue"],
    )
    rules = (
        "arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:"
        "rule/configpipe-config-bus/configpipe-watch-checkout-*"
    )
    queues = "arn:<AWS::Partition>:sqs:<AWS::Region>:<AWS::AccountId>:configpipe-watch-checkout-*"
    assert [rendered(r) for r in resources_of(rule)] == [rules] == [rendered(r) for r in resources_of(target)]
    assert [rendered(r) for r in resources_of(queue)] == [queues]
    # a rule matches only the pipeline's announcements (never a team's change) ...
    assert rule["Condition"] == {
        "ForAllValues:StringEquals": {"events:source": ["configpipe.pipeline"]},
        "Null": {"events:source": "false"},
    }
    assert actions_of(rule) == ["events:PutRule"]
    # (deleting carries no events:source, so it is a statement of its own, unconditioned)
    remove = statements["RemoveTemporaryWatchRule"]
    assert actions_of(remove) == ["events:DeleteRule", "events:RemoveTargets"] and "Condition" not in remove
    assert [rendered(r) for r in resources_of(remove)] == [rules]
    # ... and delivers only to the team's own watch queue, in this account
    assert actions_of(target) == ["events:PutTargets"]
    assert [rendered(a) for a in target["Condition"]["ArnLike"]["events:TargetArn"]] == [queues]
    # ... and no queue's policy (or other attribute) can be changed after `watch` creates it
    assert actions_of(queue) == [
        "sqs:CreateQueue",
        "sqs:DeleteQueue",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
    ]
    every_action = {a for statement in statements.values() for a in actions_of(statement)}
    assert not every_action & {"sqs:SetQueueAttributes", "sqs:AddPermission", "sqs:*"}


def test_only_the_pipeline_may_park_a_message_in_a_dlq(template_json: dict[str, Any]) -> None:
    # H1, defence in depth: a message planted in a DLQ would be redriven to the queue's function.
    queues = pipeline_dead_letter_queues(template_json)
    guarded: set[str] = set()
    for policy in resources(template_json, "AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Sid") != "OnlyThePipelineParksHere":
                continue
            assert statement["Effect"] == "Deny" and statement["Principal"] == {"AWS": "*"}
            assert statement["Action"] == "sqs:SendMessage"
            assert statement["Condition"]["BoolIfExists"] == {"aws:PrincipalIsAWSService": "false"}
            writers = statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
            writers = writers if isinstance(writers, list) else [writers]
            assert writers and all("Role" in r["Fn::GetAtt"][0] for r in writers)
            guarded.update(q["Ref"] for q in policy["Properties"]["Queues"])
    assert guarded == queues
