"""The sample service serves by OpenFeature flags: maintenance mode and a per-tenant rate limit
from the ``flags`` document, changed by a push through its own update handler at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from openfeature import api

from configpipe.client import ConfigClient
from configpipe_tools.harness.aws import REGION
from configpipe_tools.harness.lambda_context import LambdaContext
from sample_service import app
from tests.unit.test_client import Clock, as_event, put, update
from tests.unit.test_client_rollouts import ROOT
from tests.unit.test_sample_service_rollouts import checkout_settings


def flags(maintenance_tenants: list[str]) -> dict[str, Any]:
    document: dict[str, Any] = {
        "maintenance": {"default": False},
        "rate_limit": {
            "default": 100,
            "boolean_type": False,
            "rules": {
                "big tenant": {
                    "when_match": 1000,
                    "conditions": [{"action": "EQUALS", "key": "tenant", "value": "t-big"}],
                }
            },
        },
    }
    if maintenance_tenants:
        document["maintenance"]["rules"] = {
            "configpipe: tenant in list": {
                "when_match": True,
                "conditions": [{"action": "IN", "key": "tenant", "value": maintenance_tenants}],
            }
        }
    return document


@pytest.fixture
def service(pipeline) -> Iterator[Any]:
    put(f"{ROOT}/flags", flags([]))
    client = ConfigClient(
        "checkout", "production", ssm_client=boto3.client("ssm", region_name=REGION), clock=Clock()
    )
    yield app.build(checkout_settings(pipeline), client=client)
    api.clear_providers()


def serve(service: Any, tenant: str) -> dict[str, Any]:
    answer: dict[str, Any] = service({"tenant": tenant, "serve": True}, LambdaContext())
    return answer


def test_flags_decide_how_each_tenant_is_served(service):
    assert serve(service, "t-7") == {
        "service": "checkout",
        "environment": "production",
        "tenant": "t-7",
        "statusCode": 200,
        "maintenance": False,
        "maintenanceReason": "STATIC",  # no rules yet
        "rateLimit": 100,
        "rateLimitReason": "DEFAULT",
    }
    big = serve(service, "t-big")
    assert (big["rateLimit"], big["rateLimitReason"]) == (1000, "TARGETING_MATCH")


def test_maintenance_for_one_tenant_shows_at_once_after_the_push_then_goes(service):
    assert serve(service, "t-7")["statusCode"] == 200
    # When the update handler (the same function) applies version 2: t-7 in maintenance
    assert service(as_event(update("flags", 2, flags(["t-7"]))), LambdaContext())["applied"] is True
    # Then t-7 gets 503 at once (the client's clock never moved) and t-8 is served
    assert (serve(service, "t-7")["statusCode"], serve(service, "t-7")["maintenanceReason"]) == (
        503,
        "TARGETING_MATCH",
    )
    assert serve(service, "t-8")["statusCode"] == 200
    # And disabling it again is just as quick
    service(as_event(update("flags", 3, flags([]))), LambdaContext())
    assert serve(service, "t-7")["statusCode"] == 200


def test_a_serve_request_with_unknown_fields_is_refused(service):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        service({"tenant": "t-7", "serve": True, "colour": "red"}, LambdaContext())


def test_a_reader_made_for_direct_invokes_hears_the_push_too(pipeline):
    # Given the function as the stack deploys it: no CONFIG_ENVIRONMENT, so no settings client;
    # its first direct invoke makes a reader for the environment it names
    put(f"{ROOT}/flags", flags([]))
    service = app.build(checkout_settings(pipeline))
    try:
        request = {"tenant": "t-7", "serve": True, "environment": "production"}
        assert service(request, LambdaContext())["statusCode"] == 200
        # When its update handler applies a push
        assert service(as_event(update("flags", 2, flags(["t-7"]))), LambdaContext())["applied"] is True
        # Then the reader answers with it at once, not after its 60 s TTL
        assert service(request, LambdaContext())["statusCode"] == 503
    finally:
        api.clear_providers()
