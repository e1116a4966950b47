"""Every function is traced, logs JSON to its own retained log group, uses Powertools, and
fails into a dead-letter queue; the materialiser reads the stream safely."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from tests.infrastructure.conftest import rendered, resources, the_function

pytestmark = pytest.mark.infrastructure

EXPECTED_ENVIRONMENT = {
    "configpipe.handlers.validator.handler": {
        "CHANGE_LOG_TABLE",
        "REGISTRY_PARAMETER",
        "SECRETS_KEY_ID",
        "HASH_KEY_ID",
    },
    "configpipe.handlers.materialiser.handler": {
        "CHANGE_LOG_TABLE",
        "EVENT_BUS_NAME",
        "SECRETS_KEY_ID",
        "REGISTRY_PARAMETER",
        "INLINE_VALUE_MAX_BYTES",
    },
    "configpipe.handlers.propagator.handler": {"EVENT_BUS_NAME", "REGISTRY_PARAMETER"},
}
#: Every function gets these besides its own.
POWERTOOLS = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    "AWS_RETRY_MODE",
}


def test_every_function_is_traced_logs_json_and_uses_the_powertools_layer(
    template_json: dict[str, Any],
) -> None:
    functions = resources(template_json, "AWS::Lambda::Function")
    # validator, materialiser, propagator, rollouts, 3 demo handlers, releases, redrive, drift, ledger
    assert len(functions) == 11
    log_groups = resources(template_json, "AWS::Logs::LogGroup")
    for fn in functions.values():
        props = fn["Properties"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["Runtime"] == "python3.12"
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert log_groups[log_group]["Properties"]["RetentionInDays"] == 30
        layers = [rendered(layer) for layer in props["Layers"]]
        assert layers[0] == (
            "arn:<AWS::Partition>:lambda:<AWS::Region>:017000801446:layer:"
            "AWSLambdaPowertoolsPythonV3-python312-x86_64:27"
        )
        # The demo handlers use configpipe.client.openfeature: the stack's own OpenFeature layer.
        is_demo = props["Handler"] == "sample_service.app.handler"
        assert len(layers) == (2 if is_demo else 1)
        variables = props["Environment"]["Variables"]
        assert set(variables) >= POWERTOOLS
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "configpipe"
        assert variables["AWS_RETRY_MODE"] == "standard"


@pytest.mark.parametrize(("handler", "expected"), sorted(EXPECTED_ENVIRONMENT.items()))
def test_pipeline_functions_get_the_documented_environment(
    template_json: dict[str, Any], handler: str, expected: set[str]
) -> None:
    _, fn = the_function(template_json, handler)
    assert set(fn["Properties"]["Environment"]["Variables"]) == expected | POWERTOOLS


def test_materialiser_inline_limit_comes_from_context(template_json: dict[str, Any]) -> None:
    _, fn = the_function(template_json, "configpipe.handlers.materialiser.handler")
    assert fn["Properties"]["Environment"]["Variables"]["INLINE_VALUE_MAX_BYTES"] == "1024"


def test_demo_services_get_a_named_update_handler(template: Template) -> None:
    for service in ("checkout", "payments", "search"):
        template.has_resource_properties(
            "AWS::Lambda::Function",
            {
                "FunctionName": f"{service}-config-update-handler",
                "Handler": "sample_service.app.handler",
                "Environment": {
                    "Variables": Match.object_like(
                        {
                            "SERVICE_NAME": service,
                            "APPLIED_TABLE": {"Ref": Match.string_like_regexp("DemoApplied")},
                        }
                    )
                },
            },
        )


def test_stream_mapping_retries_bisects_dead_letters_and_filters(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [Match.string_like_regexp("^ChangeLogTable"), "StreamArn"]},
            "StartingPosition": "TRIM_HORIZON",
            "BatchSize": 10,
            "BisectBatchOnFunctionError": True,
            "MaximumRetryAttempts": 10,
            "MaximumRecordAgeInSeconds": 86400,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "DestinationConfig": {
                "OnFailure": {"Destination": {"Fn::GetAtt": [Match.string_like_regexp("StreamDlq"), "Arn"]}}
            },
        },
    )


def test_stream_filters_pass_only_new_versions_rollout_states_and_rejections(
    template_json: dict[str, Any],
) -> None:
    (mapping,) = resources(template_json, "AWS::Lambda::EventSourceMapping").values()
    patterns = [json.loads(f["Pattern"]) for f in mapping["Properties"]["FilterCriteria"]["Filters"]]
    assert patterns == [
        {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["version"]}}}},
        # every state change of a rollout (started, stepped, paused, resumed, ended)
        {"eventName": ["INSERT", "MODIFY"], "dynamodb": {"NewImage": {"kind": {"S": ["rollout"]}}}},
        {
            "eventName": ["INSERT"],
            "dynamodb": {"NewImage": {"kind": {"S": ["change"]}, "status": {"S": ["rejected"]}}},
        },
    ]


def test_async_invoked_functions_retry_twice_then_dead_letter(template_json: dict[str, Any]) -> None:
    configs = resources(template_json, "AWS::Lambda::EventInvokeConfig")
    queues = resources(template_json, "AWS::SQS::Queue")
    configured = set()
    for config in configs.values():
        props = config["Properties"]
        assert props["MaximumRetryAttempts"] == 2
        assert props["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0] in queues
        configured.add(props["FunctionName"]["Ref"])
    functions = resources(template_json, "AWS::Lambda::Function")
    async_invoked = {
        logical_id
        for logical_id, fn in functions.items()
        # The redrive function is invoked only synchronously. (The materialiser is driven by the
        # stream, and asynchronously by the redrive function when it re-delivers a batch.)
        if fn["Properties"]["Handler"] != "configpipe.handlers.redrive.handler"
    }
    assert configured == async_invoked


def test_the_lambda_asset_ships_the_functions_but_not_the_cli_or_the_local_runner(
    template_json: dict[str, Any], synth_dir: Any
) -> None:
    # Given the staged asset every function's code points at (synthesised with template_json)
    keys = {
        fn["Properties"]["Code"]["S3Key"] for fn in resources(template_json, "AWS::Lambda::Function").values()
    }
    assets = [synth_dir / f"asset.{key.removesuffix('.zip')}" for key in keys]
    code_assets = [p for p in assets if (p / "configpipe").is_dir()]
    assert len(code_assets) == 1
    shipped = {str(f.relative_to(code_assets[0])) for f in code_assets[0].rglob("*.py")}

    assert "configpipe/handlers/validator.py" in shipped
    assert "sample_service/app.py" in shipped
    assert not [f for f in shipped if f.startswith(("configpipe/cli/", "configpipe/local/"))]
