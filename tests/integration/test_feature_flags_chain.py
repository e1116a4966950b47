"""A flags change end to end through every function in one process (on moto): published by a
team, validated, materialised, fanned out, applied by the checkout update handler — and then
``FeatureFlags.evaluate`` and the OpenFeature client answer differently at once, with no cache
TTL passed. A bad flags document is rejected and never reaches the service."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.feature_flags import FeatureFlags
from openfeature import api
from openfeature.evaluation_context import EvaluationContext

from configpipe.changelog import ChangeLog
from configpipe.client import ConfigClient, config_update_handler
from configpipe.client.feature_flags import ConfigPipeStore
from configpipe.client.openfeature import ConfigPipeProvider
from configpipe_tools.harness.aws import REGION, provision
from configpipe_tools.harness.chain import Chain
from configpipe_tools.harness.events import change

CHECKOUT = "configpipe.team.checkout"


class FrozenClock:
    """The client's clock never moves: any answer that changes came from the push."""

    def __call__(self) -> float:
        return 1000.0


def document(maintenance: bool, tenants: list[str]) -> dict[str, Any]:
    return {
        "maintenance": {"default": maintenance},
        "new_checkout": {
            "default": False,
            "rules": {
                "pilot tenants": {
                    "when_match": True,
                    "conditions": [{"action": "IN", "key": "tenant", "value": tenants}],
                }
            },
        },
    }


@pytest.fixture
def chain(aws) -> Chain:
    return Chain(provision())


def test_a_published_flags_change_flips_evaluate_and_openfeature_after_the_update_handler(chain):
    # Given version 1 of the flags, and a warm service instance reading them
    chain.publish(change("flags", document(False, ["tenant-1"]), change_id="f1"), CHECKOUT)
    chain.run()
    client = ConfigClient(
        "checkout",
        "production",
        ttl_seconds=300,
        ssm_client=boto3.client("ssm", region_name=REGION),
        clock=FrozenClock(),
    )
    store = ConfigPipeStore(client, "flags")
    flags = FeatureFlags(store=store)
    domain = f"chain-{uuid.uuid4()}"
    api.set_provider_and_wait(ConfigPipeProvider(store), domain=domain)
    openfeature = api.get_client(domain)
    tenant_7 = EvaluationContext(targeting_key="tenant-7", attributes={"tenant": "tenant-7"})
    try:
        assert flags.evaluate(name="new_checkout", context={"tenant": "tenant-7"}, default=False) is False
        assert openfeature.get_boolean_value("new_checkout", False, tenant_7) is False
        # The checkout update handler of this instance shares the client (as a service wires it)
        chain.update_handlers["checkout-config-update-handler"] = config_update_handler(
            "checkout", on_update=lambda update, value: None, client=client
        )

        # When the team enables the flag for tenant-7 and the pipeline delivers it
        chain.publish(change("flags", document(False, ["tenant-1", "tenant-7"]), change_id="f2"), CHECKOUT)
        chain.run()

        # Then both integrations answer with version 2 at once (the client's clock never moved)
        assert client.version_of("flags") == 2
        assert flags.evaluate(name="new_checkout", context={"tenant": "tenant-7"}, default=False) is True
        details = openfeature.get_boolean_details("new_checkout", False, tenant_7)
        assert (details.value, details.reason, details.variant) == (True, "TARGETING_MATCH", "pilot tenants")
        assert (
            openfeature.get_boolean_value(
                "new_checkout", True, EvaluationContext("tenant-8", {"tenant": "x"})
            )
            is False
        )
    finally:
        api.clear_providers()


def test_a_bad_flags_document_is_rejected_and_never_reaches_the_service(chain):
    chain.publish(change("flags", document(False, ["tenant-1"]), change_id="good"), CHECKOUT)
    chain.run()
    bad = {"maintenance": {"default": "yes"}}
    chain.publish(change("flags", bad, change_id="bad"), CHECKOUT)
    chain.run()

    record = ChangeLog(chain.pipeline.table_name).change("bad", CHECKOUT)
    assert record is not None and record.status == "rejected"
    assert [r["code"] for r in record.reasons] == ["INVALID_FEATURE_FLAGS"]
    assert record.reasons[0]["field"] == "value.maintenance"
    parameter = boto3.client("ssm", region_name=REGION).get_parameter(
        Name="/config/checkout/production/flags"
    )
    assert parameter["Parameter"]["Version"] == 1  # the good document is still the only one
