"""Reliability suite, short form (issue 17): an agent that says what really happened.

The platform is the emulated CPUCP served on a real Unix socket; faults are injected on
the agent's side of the socket (a connection cut at a chosen command), or in the reply
bytes where a buggy firmware is the thing under test.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from memlat.agent.probe import MAY_BE_RUNNING, iter_qcom, probe
from memlat.agent.session import make_agent
from memlat.config import load_config
from memlat.cpucp.boot import make_cpucp_platform
from memlat.cpucp.service import CpucpService
from memlat.errors import TransportError
from memlat.frontends.unix import UnixFrontEnd
from memlat.qcom.dialect import Dialect
from memlat.qcom.ids import QcomMessage
from memlat.scmi.header import Header
from memlat.scmi.protocols.identity import PlatformIdentity
from memlat.scmi.smt import MAX_PAYLOAD_LINUX
from memlat.transports.inproc import InProcessTransport
from memlat.transports.unix import UnixTransport

CFG = load_config(soc="x1e80100")


class CutAt(UnixTransport):
    """Cuts its own connection right after sending the first command with this
    (protocol, message id): the command reached the platform, its reply is lost (a
    reply the server managed to send before the cut is discarded, as a lost link
    would lose it)."""

    def __init__(self, path: Path, protocol_id: int, message_id: int):
        super().__init__(path)
        self.target = (protocol_id, message_id)
        self.cut = False

    def send(self, message: bytes) -> None:
        super().send(message)
        header = Header.from_bytes(message)
        if (header.protocol_id, header.message_id) == self.target:
            self._sock.shutdown(socket.SHUT_RDWR)
            self.cut = True

    def receive(self, timeout_s: float):
        if self.cut:
            raise TransportError(f"{self.name}: platform closed the connection (cut)")
        return super().receive(timeout_s)


@pytest.fixture
def served() -> Iterator[tuple[Path, CpucpService]]:
    platform, service = make_cpucp_platform(CFG.hardware())
    path = Path("/tmp") / f"mlf-{os.getpid()}-agent.sock"
    with UnixFrontEnd(platform, path):
        yield path, service


def test_lost_connection_during_sub_vendor_is_a_transport_error(served) -> None:
    path, _service = served
    agent = make_agent(CutAt(path, 0x10, 0x4), Dialect.V8)  # DISCOVER_SUB_VENDOR
    result = probe(agent, CFG)
    summary = result.summary()
    assert "transport error" in summary and "DISCOVER_SUB_VENDOR" in summary
    assert "closed the connection" in summary
    assert "does not advertise" not in summary
    assert result.state == "unprogrammed" and list(iter_qcom(result.exchanges)) == []


class NoVersionValue(InProcessTransport):
    """A firmware that answers 0x80 PROTOCOL_VERSION with SUCCESS and no value."""

    def receive(self, timeout_s: float):
        reply = super().receive(timeout_s)
        if reply is not None:
            header = Header.from_bytes(reply)
            if (header.protocol_id, header.message_id) == (0x80, 0x0):
                return reply[:8]
        return reply


def test_success_without_its_value_is_a_protocol_error_naming_the_field() -> None:
    platform, _ = make_cpucp_platform(CFG.hardware())
    result = probe(make_agent(NoVersionValue(platform), Dialect.V8), CFG)
    summary = result.summary()
    assert "protocol error" in summary and "u32 version field" in summary
    assert "0 value bytes" in summary
    assert "failed: SUCCESS" not in summary
    assert list(iter_qcom(result.exchanges)) == []


@pytest.mark.parametrize("vendor", ["Qua1comm", "garbage?\x7f", "", "ARM"])
def test_garbage_vendor_refuses_to_bind_0x80(vendor: str) -> None:
    platform, service = make_cpucp_platform(CFG.hardware(),
                                           identity=PlatformIdentity(vendor=vendor))
    result = probe(make_agent(InProcessTransport(platform), Dialect.V8), CFG)
    assert f"platform vendor {vendor!r} is not 'Qualcomm'" in result.summary()
    assert "would not bind vendor protocol 0x80" in result.summary()
    assert list(iter_qcom(result.exchanges)) == [] and service.snapshot().groups == ()


def test_vendor_match_ignores_case_as_linux_does() -> None:
    platform, _ = make_cpucp_platform(CFG.hardware(),
                                       identity=PlatformIdentity(vendor="QUALCOMM"))
    assert probe(make_agent(InProcessTransport(platform), Dialect.V8), CFG).ok


def _eventually_running(service: CpucpService) -> bool:
    """The server thread handles the START_TIMER that went out just before the cut."""
    deadline = time.monotonic() + 5
    while not service.snapshot().running and time.monotonic() < deadline:
        time.sleep(0.005)
    return service.snapshot().running


def test_lost_start_timer_reconnects_once_and_stops(served) -> None:
    path, service = served
    agent = make_agent(CutAt(path, 0x80, QcomMessage.START_ACTIVITY), Dialect.V8)

    def reconnect():
        return make_agent(UnixTransport(path), Dialect.V8)

    result = probe(agent, CFG, reconnect=reconnect)
    assert result.failure is not None and result.failure.message.param == "START_TIMER"
    assert result.state == "stopped"
    assert any("new connection" in n for n in result.notes)
    assert not service.snapshot().running  # the reconnect really stopped it


def test_lost_start_timer_without_reconnect_says_it_may_be_running(served) -> None:
    path, service = served
    agent = make_agent(CutAt(path, 0x80, QcomMessage.START_ACTIVITY), Dialect.V8)
    result = probe(agent, CFG)
    assert result.state == "unknown"
    assert MAY_BE_RUNNING in result.summary()
    assert _eventually_running(service)  # and it is: the report is the truth


def test_lost_start_timer_with_continue_policy_is_unknown_not_not_started(served) -> None:
    path, service = served
    agent = make_agent(CutAt(path, 0x80, QcomMessage.START_ACTIVITY), Dialect.V8)
    result = probe(agent, CFG, on_error="continue")
    assert result.state == "unknown" and MAY_BE_RUNNING in result.notes
    assert _eventually_running(service)


def test_channel_limit_matches_the_agent_limit() -> None:
    platform, _ = make_cpucp_platform(CFG.hardware())
    assert platform.max_msg_size == MAX_PAYLOAD_LINUX == 104
