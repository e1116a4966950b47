"""The sample service while a tenant's own value rolls out (issue 17, item 7): the tenant's
rollout steps are recorded in a row of their own, and the per-tenant read answers from the
tenant's rollout (the tenant is the subject)."""

from __future__ import annotations

from typing import Any

import boto3

from configpipe_tools.harness.aws import REGION
from configpipe_tools.harness.lambda_context import LambdaContext
from sample_service import app
from sample_service.settings import SampleServiceSettings
from tests.unit.test_client import put
from tests.unit.test_client_rollouts import ROOT, as_bus_event, event_of, view
from tests.unit.test_client_rollouts import materialise as materialise_service
from tests.unit.test_client_tenant_rollouts import ACME, materialise, tenant_view


def settings(pipeline: Any) -> SampleServiceSettings:
    return SampleServiceSettings(
        service_name="checkout", applied_table=pipeline.applied_table_name, config_environment="production"
    )


def row(pipeline: Any, sk: str) -> dict[str, Any] | None:
    table = boto3.resource("dynamodb", region_name=REGION).Table(pipeline.applied_table_name)
    return table.get_item(Key={"pk": "checkout", "sk": sk}).get("Item")


def test_a_tenants_rollout_step_has_its_own_row_beside_the_services(pipeline):
    put(f"{ROOT}/max_items", 50)
    materialise_service(view(weight=25, sequence=4, candidate_version=5))
    materialise(tenant_view(sequence=0, candidate_version=2))
    handler = app.build(settings(pipeline))

    service_step = event_of(view(weight=25, sequence=4, candidate_version=5))
    tenant_step = event_of(tenant_view(sequence=0, candidate_version=2))

    assert handler(as_bus_event(service_step), LambdaContext())["applied"] is True
    assert (
        handler(as_bus_event(tenant_step, "ConfigurationRolloutStarted"), LambdaContext())["applied"] is True
    )
    service_row = row(pipeline, "production#max_items#rollout")
    tenant_row = row(pipeline, "production#max_items#tenant#acme#rollout")
    assert service_row is not None and (service_row["candidateVersion"], service_row["sequence"]) == (5, 4)
    assert tenant_row is not None
    assert (tenant_row["tenant"], tenant_row["candidateVersion"], tenant_row["sequence"]) == ("acme", 2, 0)


def test_a_tenant_reads_its_own_rollout(pipeline):
    put(f"{ROOT}/max_items", 50)
    put(f"{ACME}/max_items", 100)
    materialise(tenant_view(weight=0.0, targets=("acme",)))
    handler = app.build(settings(pipeline))

    acme = handler({"tenant": "acme", "key": "max_items"}, LambdaContext())
    globex = handler({"tenant": "globex", "key": "max_items"}, LambdaContext())

    assert (acme["value"], acme["readsCandidate"], acme["tenantRollout"], acme["candidateVersion"]) == (
        150,
        True,
        True,
        2,
    )
    assert (globex["value"], globex["tenantRollout"], globex["tenantOverride"]) == (50, False, False)
