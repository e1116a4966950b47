"""A taken port gets only the project's clear message, not the web server's own before it."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from configpipe_tools.local.server import EmulatorServer, PortInUseError


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def test_a_taken_port_raises_the_clear_error_and_prints_nothing_else(
    taken_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(PortInUseError, match=f"port {taken_port} on 127.0.0.1 is already in use"):
        EmulatorServer("127.0.0.1", taken_port).start()

    said = capsys.readouterr()
    assert said.err == ""
    assert said.out == ""
