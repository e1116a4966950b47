"""Acknowledgements: what a service's update handler did with each version (issue 14).

The update handler reports every version it applies, and every version the service's own
check refuses (the callback raises :class:`ConfigurationRefusedError`: the service keeps its last
good value), as a ``ConfigurationAcknowledged`` event. :class:`BusAcknowledgements` publishes it
on the config bus with the service's own source, ``configpipe.consumer.<service>``, which the
bus lets only the service's tagged role use (docs/security.md); the delivery-ledger function
records it. An acknowledgement carries the version, never the value.

Cheap to import: boto3 and the contracts are loaded when acknowledgements are first made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from configpipe.contracts import ConfigurationAcknowledged


class ConfigurationRefusedError(Exception):
    """Raised by a service's ``on_update`` callback when its own check refuses a value. The
    update handler keeps the last good value, acknowledges the version as refused with
    ``reason`` (the service's words about the value; never quote the value itself, it may be a
    secret) and does not fail the invocation: a retry would refuse it again."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Acknowledgements(Protocol):
    """Where the update handler reports outcomes (a port: tests inject one)."""

    def report(self, ack: ConfigurationAcknowledged) -> None: ...


class BusAcknowledgements:
    """Publishes acknowledgements on the config bus as ``configpipe.consumer.<service>``. A
    refused PutEvents raises, so the invocation fails and Lambda's retries report it again."""

    def __init__(self, service: str, bus_name: str, client: Any = None) -> None:
        from configpipe.bus import ConfigBus
        from configpipe.contracts import consumer_source

        self._bus = ConfigBus(bus_name, client, source=consumer_source(service))

    def report(self, ack: ConfigurationAcknowledged) -> None:
        from configpipe.contracts import DetailType

        self._bus.publish([self._bus.entry(DetailType.CONFIGURATION_ACKNOWLEDGED, ack)])
