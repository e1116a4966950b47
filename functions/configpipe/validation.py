"""Validation of a ``ConfigurationChange``: structure, registry rules, value rules.

Pure functions over plain data; no AWS call. Every problem becomes a
:class:`configpipe.contracts.Reason` with a stable code and a message that never quotes
the submitted value (it may be a secret).
"""

from __future__ import annotations

import json
import re
import warnings
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from configpipe.contracts import (
    GLOBAL_SERVICE,
    MAX_VALUE_BYTES,
    MAX_VALUE_DEPTH,
    ConfigurationChange,
    Operation,
    Reason,
    ReasonCode,
)
from configpipe.registry import Registry
from configpipe.untrusted import MAX_REASONS, bounded
from configpipe.values import canonical_json, nesting_depth

M = TypeVar("M", bound=BaseModel)

_FIELD_CODES = {
    "changeId": ReasonCode.INVALID_CHANGE_ID,
    "service": ReasonCode.INVALID_SERVICE,
    "environment": ReasonCode.INVALID_ENVIRONMENT,
    "key": ReasonCode.INVALID_KEY,
    "operation": ReasonCode.INVALID_OPERATION,
    "tenant": ReasonCode.INVALID_TENANT,
    "action": ReasonCode.INVALID_OPERATION,
}


def parse_change(detail: Any) -> tuple[ConfigurationChange | None, list[Reason]]:
    """The typed change, or the reasons it is not one."""
    return parse_model(ConfigurationChange, detail)


def parse_model(model: type[M], detail: Any) -> tuple[M | None, list[Reason]]:
    """A command's detail as its contract model, or the reasons it is not one (stable codes)."""
    if not isinstance(detail, dict):
        return None, [Reason(code=ReasonCode.MALFORMED_EVENT, message="event detail must be a JSON object")]
    try:
        return model.model_validate(detail), []
    except ValidationError as error:
        return None, _bounded_reasons(error.errors(include_input=False, include_url=False))


#: Every unknown field shares one reason, and a rejection lists at most MAX_REASONS: a detail
#: with 8,000 unknown fields once produced a rejection record over DynamoDB's 400 KB item
#: limit, and so no verdict at all.
_NAMES_SHOWN = 10


def _bounded_reasons(errors: list[Any]) -> list[Reason]:
    unknown = [".".join(str(part) for part in e["loc"]) for e in errors if e["type"] == "extra_forbidden"]
    reasons = [_reason_from(e) for e in errors if e["type"] != "extra_forbidden"]
    if unknown:
        reasons.append(_unknown_fields(unknown))
    if len(reasons) > MAX_REASONS:
        hidden = len(reasons) - MAX_REASONS + 1
        last = reasons[MAX_REASONS - 1]
        reasons = [
            *reasons[: MAX_REASONS - 1],
            Reason(
                code=last.code, message=f"{last.message} (and {hidden - 1} more problems)", field=last.field
            ),
        ]
    return reasons


def _unknown_fields(names: list[str]) -> Reason:
    shown = ", ".join(bounded(name, 64) for name in names[:_NAMES_SHOWN])
    more = f" and {len(names) - _NAMES_SHOWN} more" if len(names) > _NAMES_SHOWN else ""
    noun = "field is" if len(names) == 1 else "fields are"
    return Reason(
        code=ReasonCode.UNKNOWN_FIELD,
        message=f"{len(names)} {noun} not part of the contract: {shown}{more}",
        field=names[0],
    )


def _reason_from(error: Any) -> Reason:
    field = ".".join(str(part) for part in error["loc"]) or None
    top = str(error["loc"][0]) if error["loc"] else ""
    kind = error["type"]
    if kind == "missing":
        code = ReasonCode.MISSING_FIELD
    elif kind == "extra_forbidden":
        code = ReasonCode.UNKNOWN_FIELD
    elif top == "rollout":
        code = ReasonCode.INVALID_ROLLOUT
    elif top in _FIELD_CODES and kind in {"value_error", "enum", "string_type"}:
        code = _FIELD_CODES[top]
    else:
        code = ReasonCode.INVALID_TYPE
    # pydantic's ``msg`` describes the rule, not the input, so it is safe to publish.
    message = str(error["msg"]).removeprefix("Value error, ")
    return Reason(code=code, message=message, field=field)


def check_rules(change: ConfigurationChange, source: str, registry: Registry) -> list[Reason]:
    """Rules that need the registry or span several fields."""
    reasons: list[Reason] = []
    if change.environment not in registry.environments:
        reasons.append(
            Reason(
                code=ReasonCode.ENVIRONMENT_NOT_ALLOWED,
                message=f"environment must be one of {', '.join(registry.environments)}",
                field="environment",
            )
        )
    if not registry.is_known(change.service):
        reasons.append(
            Reason(code=ReasonCode.UNKNOWN_SERVICE, message="service is not registered", field="service")
        )
    else:
        if source not in registry.publishers_of(change.service):
            reasons.append(
                Reason(
                    code=ReasonCode.SOURCE_NOT_AUTHORIZED,
                    message=f"source {source!r} may not change service {change.service!r}",
                    field="source",
                )
            )
        entry = registry.services.get(change.service)
        if (
            change.service != GLOBAL_SERVICE
            and entry is not None
            and entry.environments
            and change.environment not in entry.environments
        ):
            reasons.append(
                Reason(
                    code=ReasonCode.ENVIRONMENT_NOT_ALLOWED,
                    message=f"service {change.service!r} does not run in {change.environment!r}",
                    field="environment",
                )
            )
        if registry.is_feature_flags(change.service, change.key) and (
            change.encrypted_value is not None or registry.is_sensitive(change.key, change.sensitive)
        ):
            reasons.append(
                Reason(
                    code=ReasonCode.INVALID_FEATURE_FLAGS,
                    message="a feature-flags document cannot be sensitive: service code reads it from "
                    "Parameter Store",
                    field="sensitive",
                )
            )
    reasons.extend(_check_tenant(change, source, registry))
    reasons.extend(_check_operation_fields(change))
    reasons.extend(check_rollout(change, registry))
    return reasons


def _check_tenant(change: ConfigurationChange, source: str, registry: Registry) -> list[Reason]:
    """A tenant's value belongs to a service (global keys have none) and may be restricted to
    some of the service's publishers. It may roll out progressively like the service's value
    (its rollout lives in the tenant's own partition: docs/rollouts.md, "A tenant's value")."""
    if change.tenant is None:
        return []
    if change.service == GLOBAL_SERVICE:
        return [
            Reason(
                code=ReasonCode.INVALID_TENANT, message="global keys have no tenant values", field="tenant"
            )
        ]
    reasons = []
    if (
        registry.is_known(change.service)
        and source in registry.publishers_of(change.service)
        and not registry.may_publish_tenant(change.service, change.tenant, source)
    ):
        reasons.append(
            Reason(
                code=ReasonCode.TENANT_NOT_AUTHORIZED,
                message=f"source {source!r} may not change tenant {change.tenant!r} "
                f"of service {change.service!r}",
                field="source",
            )
        )
    return reasons


def _check_release_binding(change: ConfigurationChange, registry: Registry) -> list[Reason]:
    """A config change may ride only on a release of a function its own service registered,
    and carries no alarms or targets of its own (the release's alarms and traffic decide)."""
    assert change.rollout is not None and change.rollout.release is not None
    entry = registry.services.get(change.service)
    if entry is None or change.rollout.release.function not in entry.functions:
        return [
            Reason(
                code=ReasonCode.INVALID_ROLLOUT,
                message=f"function {change.rollout.release.function!r} is not registered for releases of "
                f"service {change.service!r}",
                field="rollout.release.function",
            )
        ]
    if change.rollout.alarms or change.rollout.targets or change.rollout.bake_minutes is not None:
        return [
            Reason(
                code=ReasonCode.INVALID_ROLLOUT,
                message="a rollout with a release takes the release's alarms, hooks and schedule; "
                "alarms, targets and bakeMinutes are not allowed with it",
                field="rollout",
            )
        ]
    return []


def check_rollout(change: ConfigurationChange, registry: Registry) -> list[Reason]:
    """A rollout is for put and rollback only, and its strategy must be one releases accept."""
    if change.rollout is None:
        return []
    if change.operation is Operation.DELETE:
        return [
            Reason(
                code=ReasonCode.ROLLOUT_NOT_ALLOWED,
                message="a delete cannot roll out progressively; roll out a put instead",
                field="rollout",
            )
        ]
    rollout = change.rollout
    if (rollout.strategy is None) == (rollout.release is None):
        return [
            Reason(
                code=ReasonCode.INVALID_ROLLOUT,
                message="a rollout takes either a strategy or a release, not both and not neither",
                field="rollout",
            )
        ]
    if rollout.release is not None:
        return _check_release_binding(change, registry)
    # Imported here: the release strategies are needed only by changes that carry a rollout.
    from configpipe.release.strategies import StrategyError
    from configpipe.rollout.engine import strategy_of

    assert rollout.strategy is not None
    try:
        strategy_of(rollout.strategy, rollout.bake_minutes)
    except StrategyError as error:
        return [Reason(code=ReasonCode.INVALID_ROLLOUT, message=error.message, field="rollout.strategy")]
    except ValidationError as error:
        first = error.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        message = f"invalid custom strategy ({where}): {first['msg']}" if where else "invalid custom strategy"
        return [Reason(code=ReasonCode.INVALID_ROLLOUT, message=message, field="rollout.strategy")]
    return []


def _check_operation_fields(change: ConfigurationChange) -> list[Reason]:
    given = change.model_fields_set
    has_value = "value" in given
    has_encrypted = change.encrypted_value is not None
    reasons: list[Reason] = []

    def unexpected(field: str) -> None:
        reasons.append(
            Reason(
                code=ReasonCode.UNEXPECTED_FIELD,
                message=f"{field} is not allowed with operation {change.operation.value}",
                field=field,
            )
        )

    if change.operation is Operation.PUT:
        if has_value and has_encrypted:
            unexpected("encryptedValue")
        elif not has_value and not has_encrypted:
            reasons.append(
                Reason(
                    code=ReasonCode.MISSING_VALUE, message="put needs value or encryptedValue", field="value"
                )
            )
        if change.to_version is not None:
            unexpected("toVersion")
    else:
        if has_value:
            unexpected("value")
        if has_encrypted:
            unexpected("encryptedValue")
        if change.operation is Operation.ROLLBACK and change.to_version is None:
            reasons.append(
                Reason(
                    code=ReasonCode.MISSING_TO_VERSION, message="rollback needs toVersion", field="toVersion"
                )
            )
        if change.operation is Operation.DELETE and change.to_version is not None:
            unexpected("toVersion")
    return reasons


def check_value(value: Any, schema: dict[str, Any] | None, *, feature_flags: bool = False) -> list[Reason]:
    """Size, depth, the key's JSON Schema and, for a key the registry marks as a feature-flags
    document, Powertools' feature-flag schema. Depth first: a hostile, deeply nested value
    must not reach the serialiser or the schema validators."""
    depth = nesting_depth(value)
    if depth > MAX_VALUE_DEPTH:
        return [
            Reason(
                code=ReasonCode.VALUE_TOO_DEEP,
                message=f"value nests {depth} levels; at most {MAX_VALUE_DEPTH} are allowed",
                field="value",
            )
        ]
    try:
        size = len(canonical_json(value).encode("utf-8"))
    except UnicodeEncodeError:
        return [
            Reason(
                code=ReasonCode.INVALID_TYPE,
                message="value holds a lone surrogate (\\udXXX), which is not valid Unicode text",
                field="value",
            )
        ]
    except (TypeError, ValueError):
        return [Reason(code=ReasonCode.INVALID_TYPE, message="value is not JSON", field="value")]
    if size > MAX_VALUE_BYTES:
        return [
            Reason(
                code=ReasonCode.VALUE_TOO_LARGE,
                message=f"value is {size} bytes serialised; at most {MAX_VALUE_BYTES} are allowed",
                field="value",
            )
        ]
    if schema is not None:
        problem = _schema_problem(json.dumps(schema, sort_keys=True), value, schema)
        if problem:
            return [Reason(code=ReasonCode.SCHEMA_VIOLATION, message=problem, field="value")]
    if feature_flags:
        return check_feature_flags(value)
    return []


#: Powertools' schema messages end with the names they are about ("…, rule=<rule name>",
#: "…, action=<action sent>", "…, schema=<the whole document>"): cut there, the path says where.
_POWERTOOLS_NAMES = re.compile(r",?\s*(?:rule|rule_name|feature|schema|action)=.*$", re.DOTALL)


def check_feature_flags(document: Any) -> list[Reason]:
    """A feature-flags document checked with Powertools' own validators, so what the pipeline
    accepts is exactly what ``FeatureFlags`` will evaluate. The reason names the path of the
    first problem (feature and rule names, bounded) and Powertools' rule, never a value."""
    problem = _feature_flags_problem(document)
    if problem is None:
        return []
    path, rule = problem
    return [
        Reason(
            code=ReasonCode.INVALID_FEATURE_FLAGS,
            message=f"not a valid feature-flags document: {path}: {rule}",
            field=path,
        )
    ]


def _feature_flags_problem(document: Any) -> tuple[str, str] | None:
    # Imported here: only changes to a flags key pay for Powertools' feature-flag module.
    from aws_lambda_powertools.utilities.feature_flags import schema as ff
    from aws_lambda_powertools.utilities.feature_flags.exceptions import SchemaValidationError

    def rule_of(error: Exception) -> str:
        if not isinstance(error, SchemaValidationError):
            # Powertools' validators assume JSON of roughly the right shape: an action that is a
            # list fails a dict lookup. Its own message may quote the value, so only the type.
            return f"not accepted by Powertools' validator ({type(error).__name__})"
        return bounded(_POWERTOOLS_NAMES.sub("", str(error)).strip(), 256)

    def name(text: Any) -> str:
        return bounded(str(text), 64)

    if not isinstance(document, dict):
        return "value", "the document must be a JSON object of features"
    with warnings.catch_warnings():
        # Powertools warns (not fails) on an empty document or empty rules: both evaluate fine.
        warnings.simplefilter("ignore")
        # Walk with Powertools' own per-level validators to know *where*; then the whole
        # SchemaValidator, the authority, in case a later Powertools adds a rule.
        for feature_name, feature in document.items():
            path = f"value.{name(feature_name)}"
            try:
                boolean = ff.FeaturesValidator.validate_feature(feature_name, feature)
            except Exception as error:  # hostile shapes too: see rule_of
                return path, rule_of(error)
            rules = feature.get(ff.RULES_KEY)
            if not rules:
                continue
            if not isinstance(rules, dict):
                return f"{path}.{ff.RULES_KEY}", "Feature rules must be a dictionary"
            for rule_name, rule in rules.items():
                rule_path = f"{path}.{ff.RULES_KEY}.{name(rule_name)}"
                try:
                    ff.RulesValidator.validate_rule(rule, rule_name, feature_name, boolean)
                except Exception as error:  # hostile shapes too: see rule_of
                    return rule_path, rule_of(error)
                conditions = rule.get(ff.CONDITIONS_KEY)
                if not conditions or not isinstance(conditions, list):
                    return f"{rule_path}.{ff.CONDITIONS_KEY}", "a rule needs a non-empty list of conditions"
                for index, condition in enumerate(conditions):
                    try:
                        ff.ConditionsValidator.validate_condition(rule_name, condition)
                    except Exception as error:  # hostile shapes too: see rule_of
                        return f"{rule_path}.{ff.CONDITIONS_KEY}[{index}]", rule_of(error)
        try:
            ff.SchemaValidator(schema=document).validate()
        except Exception as error:  # hostile shapes too: see rule_of
            return "value", rule_of(error)
    return None


def _schema_problem(schema_json: str, value: Any, schema: dict[str, Any]) -> str | None:
    """Which rule of the schema the value breaks, and where, in words taken only from the
    schema. fastjsonschema's own message quotes the value's property names ("data must not
    contain {'hunter2'} properties", "data.s3cr3t must be integer"): a secret's key names are
    part of the secret, so that message is never used."""
    from fastjsonschema import JsonSchemaValueException

    try:
        _compiled(schema_json)(value)
    except JsonSchemaValueException as error:
        rule = bounded(str(error.rule), 64)
        # "data" is fastjsonschema's name for the root; anything not declared is "the value".
        where = "value" + error.name[4:] if error.name in _declared_paths(schema) - {"data"} else "the value"
        definition = error.rule_definition
        shown = f" ({bounded(json.dumps(definition), 128)})" if _is_schema_scalar(definition) else ""
        return f"value does not match the key's JSON Schema: {where} breaks the {rule!r} rule{shown}"
    return None


def _is_schema_scalar(definition: Any) -> bool:
    return isinstance(definition, str | int | float | bool) or definition is None


def _declared_paths(schema: dict[str, Any]) -> set[str]:
    """fastjsonschema's names ("data", "data.limit", "data.db.host") for properties the
    schema itself declares; any other path would be spelled with the value's own keys."""
    paths = {"data"}
    pending: list[tuple[str, Any]] = [("data", schema)]
    while pending:
        path, node = pending.pop()
        properties = node.get("properties") if isinstance(node, dict) else None
        if isinstance(properties, dict):
            for name, child in properties.items():
                paths.add(f"{path}.{name}")
                pending.append((f"{path}.{name}", child))
    return paths


@lru_cache(maxsize=256)
def _compiled(schema_json: str) -> Any:
    import fastjsonschema

    return fastjsonschema.compile(json.loads(schema_json))
