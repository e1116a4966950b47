"""Every parameter and secret configpipe materialises carries Service, Environment, Owner,
CostCenter (from the registry) and ManagedBy, as part of the idempotent write (moto, the
whole chain in one process)."""

from __future__ import annotations

from typing import Any

import boto3

from configpipe.stores import SecretStore
from configpipe_tools.harness.aws import REGION, Pipeline
from configpipe_tools.harness.chain import Chain, Crashes
from configpipe_tools.harness.events import change

CHECKOUT = "configpipe.team.checkout"
EXPECTED = {
    "Service": "checkout",
    "Environment": "production",
    "Owner": "team-checkout",
    "CostCenter": "CC-1001",
    "ManagedBy": "configpipe",
}


def parameter_tags(name: str) -> dict[str, str]:
    tags = boto3.client("ssm", region_name=REGION).list_tags_for_resource(
        ResourceType="Parameter", ResourceId=name
    )
    return {t["Key"]: t["Value"] for t in tags["TagList"]}


def secret_tags(name: str) -> dict[str, str]:
    described: Any = boto3.client("secretsmanager", region_name=REGION).describe_secret(SecretId=name)
    return {t["Key"]: t["Value"] for t in described.get("Tags", [])}


def test_parameters_secrets_and_rollout_parameters_are_tagged_from_the_registry(pipeline: Pipeline):
    chain = Chain(pipeline)
    chain.publish(change("max_items", 10), CHECKOUT)
    chain.publish(chain.sealed(change("api_token", "s3cr3t", sensitive=True)), CHECKOUT)
    chain.publish(
        change("banner", "hello", rollout={"strategy": "Linear10PercentEvery1Minute"}),
        CHECKOUT,
    )
    chain.publish(change("flag", True, service="global"), "configpipe.team.platform")
    chain.run()

    assert parameter_tags("/config/checkout/production/max_items").items() >= EXPECTED.items()
    assert secret_tags("configpipe/checkout/production/api_token").items() >= EXPECTED.items()
    # a rollout's candidate and its view are parameters configpipe makes too
    for name in (
        "/config/checkout/production/banner/candidate",
        "/config/checkout/production/banner/rollout",
    ):
        assert parameter_tags(name).items() >= EXPECTED.items(), name
    assert (
        parameter_tags("/config/global/production/flag").items()
        >= {
            "Service": "global",
            "Owner": "team-platform",
            "CostCenter": "CC-1000",
            "ManagedBy": "configpipe",
        }.items()
    )


def test_a_crash_between_the_write_and_the_tagging_is_repaired_by_the_replay(pipeline: Pipeline):
    # The materialiser dies right after PutParameter took effect, before AddTagsToResource.
    chain = Chain(pipeline, crashes=Crashes(plan={("ssm", "PutParameter"): 1}))
    chain.publish(change("max_items", 10), CHECKOUT)
    chain.run()

    assert chain.crashes.fired == [("ssm", "PutParameter")]
    assert parameter_tags("/config/checkout/production/max_items").items() >= EXPECTED.items()


def test_an_existing_secret_without_the_tags_is_retagged_by_its_next_write(pipeline: Pipeline):
    # A secret written before tagging existed carries only the old configpipe: tags.
    client = boto3.client("secretsmanager", region_name=REGION)
    name = "configpipe/checkout/production/api_token"
    client.create_secret(
        Name=name, SecretString='"old"', Tags=[{"Key": "configpipe:service", "Value": "checkout"}]
    )

    store = SecretStore(client=client)
    store.put_version(name, '"new"', token="11111111-1111-4111-8111-111111111111", tags=EXPECTED)
    store.put_version(name, '"new"', token="11111111-1111-4111-8111-111111111111", tags=EXPECTED)  # a retry

    assert secret_tags(name) == {"configpipe:service": "checkout", **EXPECTED}
