"""The language-neutral contracts (docs/contracts/*.schema.json) say what the models say.

A consumer in another language validates against these files, so they must never drift from
the pydantic models (the one definition of each event), and they must keep each kind's rule
about unknown fields: a command refuses them, an announcement lets consumers ignore them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from configpipe import contracts
from configpipe.release.contracts import ReleaseDetailType
from configpipe.values import value_hash
from configpipe_tools import contract_schemas
from configpipe_tools.harness.events import change

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def validator(detail_type: str) -> jsonschema.Draft202012Validator:
    schema = contract_schemas.schema_for(detail_type)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def updated_detail() -> dict[str, Any]:
    return contracts.ConfigurationUpdated(
        change_id="c-3",
        service="checkout",
        environment="production",
        key="max_items",
        operation="put",
        version=3,
        value_hash=value_hash(30),
        value=30,
        value_inline=True,
        author="alice",
        reason="test",
        applied_at=NOW,
    ).to_detail()


def test_the_committed_schemas_match_the_models() -> None:
    drifted = contract_schemas.drift()
    assert drifted == [], f"docs/contracts drifted from the models: {drifted}; run `make schemas`"


def test_every_detail_type_on_the_bus_has_a_schema() -> None:
    every_type = {str(t) for t in contracts.DetailType} | {str(t) for t in ReleaseDetailType}
    assert every_type == {str(t) for t in contract_schemas.CATALOG}


@pytest.mark.parametrize("detail_type", sorted(contract_schemas.CATALOG))
def test_each_schema_is_valid_json_schema_and_names_its_kind(detail_type: str) -> None:
    schema = contract_schemas.schema_for(detail_type)
    jsonschema.Draft202012Validator.check_schema(schema)
    command = contract_schemas.is_command(contract_schemas.CATALOG[detail_type])
    assert (schema.get("additionalProperties") is False) is command


def test_a_change_the_pipeline_accepts_is_valid_against_its_schema() -> None:
    accepted = contracts.ConfigurationChange.model_validate(change(value={"limit": 5}))
    validator("ConfigurationChange").validate(accepted.to_detail())


def test_the_change_schema_refuses_an_unknown_field_and_a_missing_one() -> None:
    check = validator("ConfigurationChange")
    with pytest.raises(jsonschema.ValidationError, match="valeu"):
        check.validate({**change(), "valeu": 3})
    without_key = change()
    del without_key["key"]
    with pytest.raises(jsonschema.ValidationError, match="'key' is a required property"):
        check.validate(without_key)


def test_an_announcement_validates_as_published_and_with_a_field_added_later() -> None:
    check = validator("ConfigurationUpdated")
    detail = updated_detail()
    check.validate(detail)
    check.validate({**detail, "fieldAddedNextYear": {"any": "shape"}})
    with pytest.raises(jsonschema.ValidationError):
        check.validate({**detail, "version": "three"})


def test_drift_names_a_changed_a_missing_and_a_stale_file(tmp_path: Path) -> None:
    contract_schemas.write(tmp_path)
    assert contract_schemas.drift(tmp_path) == []
    (tmp_path / "ConfigurationChange.schema.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "ReleaseStepped.schema.json").unlink()
    (tmp_path / "Retired.schema.json").write_text("{}\n", encoding="utf-8")
    assert contract_schemas.drift(tmp_path) == [
        "ConfigurationChange.schema.json",
        "ReleaseStepped.schema.json",
        "Retired.schema.json",
    ]
    contract_schemas.write(tmp_path)
    assert contract_schemas.drift(tmp_path) == []
