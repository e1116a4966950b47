"""Resource names from the stack's outputs: explicit option > environment > output > default."""

from __future__ import annotations

import json

import boto3
import pytest

from configpipe_tools.harness.aws import REGION
from tests.unit.cli.conftest import Validator, assert_clean_exit, parse_json, seed


@pytest.fixture
def stack(pipeline) -> str:
    """A stack whose outputs name the moto pipeline's resources, as `cdk deploy` leaves them."""
    key_arn = boto3.client("kms", region_name=REGION).describe_key(KeyId=pipeline.secrets_key_id)[
        "KeyMetadata"
    ]["Arn"]
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "placeholder"}}},
        "Outputs": {
            "EventBusName": {"Value": pipeline.bus_name},
            "ChangeLogTableName": {"Value": pipeline.table_name},
            "SecretsKeyArn": {"Value": key_arn},
            "RegistryParameterName": {"Value": pipeline.registry_parameter},
        },
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="Configpipe", TemplateBody=json.dumps(template)
    )
    return "Configpipe"


def test_names_come_from_the_stack_outputs(runner, stack, validator: Validator):
    from configpipe_tools.cli.main import app

    # Without --secrets-key, the default alias does not exist; the stack names the key.
    result = runner.invoke(
        app,
        [
            "--stack",
            stack,
            "--source",
            "configpipe.team.checkout",
            "put",
            "checkout",
            "production",
            "db_password",
            "pw",
            "-r",
            "rotate",
            "-o",
            "json",
        ],
    )

    assert_clean_exit(result, 0)
    assert parse_json(result)["status"] == "accepted"


def test_explicit_names_win_over_the_stack(runner, stack, idle_validator: Validator):
    from configpipe_tools.cli.main import app

    seed(idle_validator, "k", 1)

    result = runner.invoke(
        app, ["--stack", stack, "--table", "Elsewhere", "get", "checkout", "production", "k"]
    )

    assert_clean_exit(result, 5)
    assert "Elsewhere" in result.stderr


def test_unknown_stack_is_exit_5_with_a_hint(runner, pipeline):
    from configpipe_tools.cli.main import app

    result = runner.invoke(app, ["--stack", "NoSuchStack", "get", "checkout", "production", "k"])

    assert_clean_exit(result, 5)
    assert "NoSuchStack" in result.stderr and "--stack" in result.stderr
