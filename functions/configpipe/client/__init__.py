"""Client helpers for service code: a cached reader of a service's configuration, the
building block of its ``<service>-config-update-handler``, and a durable queue
:class:`Subscription` with catch-up for long-running processes.

Cheap to import (no boto3, pydantic or Powertools at import time)."""

from configpipe.client.acks import Acknowledgements, BusAcknowledgements, ConfigurationRefusedError
from configpipe.client.config import (
    ConfigClient,
    ConfigTypeError,
    ConfigUnavailableError,
    SupersededValueError,
    fetch_candidate,
    fetch_stable,
    fetch_value,
)
from configpipe.client.subscription import Backoff, Subscription, SubscriptionScope
from configpipe.client.update_handler import config_update_handler

__all__ = [
    "Acknowledgements",
    "Backoff",
    "BusAcknowledgements",
    "ConfigClient",
    "ConfigTypeError",
    "ConfigUnavailableError",
    "ConfigurationRefusedError",
    "Subscription",
    "SubscriptionScope",
    "SupersededValueError",
    "config_update_handler",
    "fetch_candidate",
    "fetch_stable",
    "fetch_value",
]
