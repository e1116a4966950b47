"""JSON Schema for every event on the config bus, generated from the contracts.

The pydantic models in :mod:`configpipe.contracts` and :mod:`configpipe.release.contracts`
stay the one definition of each event; the schemas in ``docs/contracts/`` are derived from
them so a team writing a consumer in Node.js, Java or Go can validate what it reads (and
what it publishes) without Python. ``tests/unit/test_contract_schemas.py`` fails when a
model and its committed schema drift; ``make schemas`` rewrites them.

The two contract kinds keep their rule about unknown fields in the schema:

* a **command** (what a team publishes) is the shape the pipeline *accepts*
  (validation mode) with ``additionalProperties: false``: an unknown field is refused;
* an **announcement** (what the pipeline publishes) is the shape consumers *receive*
  (serialisation mode) and allows additional properties: the pipeline may add a field
  and a consumer validating with an older schema keeps working.

Rules a JSON Schema cannot say (cross-field checks, the registry, value size in bytes)
stay with the validator; each schema's ``description`` points at the model that holds them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Literal

from configpipe.contracts import (
    ROLLOUT_EVENT_TYPES,
    Command,
    ConfigurationAcknowledged,
    ConfigurationChange,
    ConfigurationDelivered,
    ConfigurationDeliveryFailed,
    ConfigurationDriftDetected,
    ConfigurationRejected,
    ConfigurationRolloutControl,
    ConfigurationRolloutEvent,
    ConfigurationUpdated,
    Contract,
    DetailType,
)
from configpipe.release.contracts import (
    ANNOUNCEMENT_CONTRACTS,
    ReleaseControl,
    ReleaseDetailType,
    ReleaseRejected,
    ReleaseRequested,
)

#: Where the generated schemas live in the repository.
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "contracts"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: Every detail type on the bus and the one model that describes its ``detail``.
CATALOG: dict[str, type[Contract]] = {
    DetailType.CONFIGURATION_CHANGE: ConfigurationChange,
    DetailType.CONFIGURATION_UPDATED: ConfigurationUpdated,
    DetailType.CONFIGURATION_REJECTED: ConfigurationRejected,
    DetailType.CONFIGURATION_DELIVERED: ConfigurationDelivered,
    DetailType.CONFIGURATION_DELIVERY_FAILED: ConfigurationDeliveryFailed,
    DetailType.CONFIGURATION_ROLLOUT_CONTROL: ConfigurationRolloutControl,
    **{detail_type: ConfigurationRolloutEvent for detail_type in ROLLOUT_EVENT_TYPES},
    DetailType.CONFIGURATION_DRIFT_DETECTED: ConfigurationDriftDetected,
    DetailType.CONFIGURATION_ACKNOWLEDGED: ConfigurationAcknowledged,
    ReleaseDetailType.RELEASE_REQUESTED: ReleaseRequested,
    ReleaseDetailType.RELEASE_CONTROL: ReleaseControl,
    ReleaseDetailType.RELEASE_REJECTED: ReleaseRejected,
    # the release lifecycle announcements: the release package's own map, so a new one
    # gets its schema (and a drift test) without anyone editing this list
    **{str(detail_type): model for detail_type, model in ANNOUNCEMENT_CONTRACTS.items()},
}


def is_command(model: type[Contract]) -> bool:
    return issubclass(model, Command)


def schema_for(detail_type: str) -> dict[str, Any]:
    """The JSON Schema of one detail type's ``detail``, as it is on the wire (camelCase)."""
    model = CATALOG[detail_type]
    mode: Literal["validation", "serialization"] = "validation" if is_command(model) else "serialization"
    schema = model.model_json_schema(by_alias=True, mode=mode)
    kind = (
        "command: unknown fields are refused"
        if is_command(model)
        else ("announcement: consumers must ignore fields they do not know")
    )
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"https://configpipe.dev/contracts/{detail_type}.schema.json",
        **schema,
        "title": detail_type,
        "description": (
            f"detail of a `{detail_type}` event ({kind}). Generated from "
            f"{model.__module__}.{model.__qualname__}; rules a schema cannot express "
            "(cross-field checks, the registry, byte limits) are enforced by the pipeline."
        ),
    }


def render(detail_type: str) -> str:
    return json.dumps(schema_for(detail_type), indent=2, sort_keys=True) + "\n"


def rendered() -> dict[str, str]:
    """File name → text for every detail type."""
    return {f"{detail_type}.schema.json": render(detail_type) for detail_type in sorted(CATALOG)}


def drift(directory: Path = SCHEMA_DIR) -> list[str]:
    """File names whose committed text differs from the models (missing, changed or stale)."""
    expected = rendered()
    present = {path.name for path in directory.glob("*.schema.json")} if directory.is_dir() else set()
    changed = [
        name
        for name, text in expected.items()
        if name not in present or (directory / name).read_text(encoding="utf-8") != text
    ]
    stale = sorted(present - set(expected))
    return sorted(changed) + stale


def write(directory: Path = SCHEMA_DIR) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    expected = rendered()
    for name, text in expected.items():
        (directory / name).write_text(text, encoding="utf-8")
    for path in directory.glob("*.schema.json"):
        if path.name not in expected:
            path.unlink()
    return sorted(expected)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/contracts drifted")
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR)
    args = parser.parse_args(argv)
    if args.check:
        drifted = drift(args.dir)
        for name in drifted:
            print(f"drifted: {name} (run `make schemas`)")
        return 1 if drifted else 0
    for name in write(args.dir):
        print(f"wrote {args.dir / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
