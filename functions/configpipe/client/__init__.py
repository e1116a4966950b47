"""Client helpers for service code: a cached reader of a service's configuration and the
building block of its ``<service>-config-update-handler``.

Cheap to import (no boto3, pydantic or Powertools at import time)."""

from configpipe.client.config import (
    ConfigClient,
    ConfigTypeError,
    ConfigUnavailableError,
    SupersededValueError,
    fetch_candidate,
    fetch_stable,
    fetch_value,
)
from configpipe.client.update_handler import config_update_handler

__all__ = [
    "ConfigClient",
    "ConfigTypeError",
    "ConfigUnavailableError",
    "SupersededValueError",
    "config_update_handler",
    "fetch_candidate",
    "fetch_stable",
    "fetch_value",
]
