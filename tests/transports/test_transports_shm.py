"""Shared-memory SMT channel: doorbells, completion modes, layout, and faults."""

from __future__ import annotations

import fcntl
import os
import stat
import struct
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from platforms import (
    MSG_DELAY,
    MSG_ECHO,
    MSG_HANG,
    TEST_PROTOCOL,
    make_platform,
)

from memlat.errors import ScmiTimeout, TransportError
from memlat.frontends.shm import ShmFrontEnd
from memlat.scmi.agent import Agent
from memlat.scmi.smt import OFF_LENGTH, SmtArea
from memlat.transports.shm import (
    DOORBELLS,
    FILE_SIZE,
    SEALS,
    ShmTransport,
    control_path,
)


@pytest.mark.parametrize("doorbell", DOORBELLS)
@pytest.mark.parametrize("interrupt", [True, False])
def test_round_trips_with_every_doorbell(short_tmp: Path, doorbell: str,
                                         interrupt: bool) -> None:
    path = short_tmp / "ch"
    with ShmFrontEnd(make_platform(), path, doorbell=doorbell) as front:
        transport = ShmTransport(path, interrupt=interrupt)
        assert transport.doorbell_kind == doorbell
        assert transport.interrupt == (interrupt and doorbell != "poll")
        agent = Agent(transport, timeout_s=5)
        for i in range(10):
            assert agent.call(TEST_PROTOCOL, MSG_ECHO, bytes([i]) * i) == bytes([i]) * i
        # the area holds the last reply laid out as protocol.md §1.5 says
        area = SmtArea(bytearray(transport._mm[:0x200]))  # the agent's view of the memfd
        assert area.is_free
        assert area.flags == (1 if transport.interrupt else 0)
        assert area.length == 8 + 9
        agent.close()
        assert front.messages == 10
    assert not path.exists() and not Path(control_path(path)).exists()


def test_socket_is_owner_only_and_memory_sealed_and_sized(short_tmp: Path) -> None:
    path = short_tmp / "ch"
    front = ShmFrontEnd(make_platform(), path).start()
    try:
        assert not path.exists()  # the channel memory is a memfd, not a file
        assert stat.S_IMODE(os.stat(control_path(path)).st_mode) == 0o600
        transport = ShmTransport(path)
        assert os.fstat(transport._fd).st_size == FILE_SIZE
        assert fcntl.fcntl(transport._fd, fcntl.F_GET_SEALS) & SEALS == SEALS
        transport.close()
    finally:
        front.stop()


def test_second_agent_is_refused_while_one_is_connected(short_tmp: Path) -> None:
    path = short_tmp / "ch"
    with ShmFrontEnd(make_platform(), path):
        first = ShmTransport(path)
        with pytest.raises(TransportError, match="already in use by another agent"):
            ShmTransport(path)
        first.close()
        time.sleep(0.05)
        second = Agent(ShmTransport(path), timeout_s=5)  # free again after close
        assert second.call(TEST_PROTOCOL, MSG_ECHO, b"ok") == b"ok"
        second.close()


class _CorruptingFrontEnd(ShmFrontEnd):
    """Writes an impossible length into every reply (a corrupted SMT area)."""

    def _serve_one(self) -> None:
        self.gate.serve_area(self.area, self.agent_id)
        struct.pack_into("<I", self._mm, OFF_LENGTH, 0x1000)
        self._p2a.ring()


def test_corrupted_length_is_reported(short_tmp: Path) -> None:
    path = short_tmp / "ch"
    with _CorruptingFrontEnd(make_platform(), path):
        agent = Agent(ShmTransport(path), timeout_s=5)
        with pytest.raises(TransportError, match=r"corrupted reply: reply length 4096.*"
                                                 r"field length, byte offset 20"):
            agent.call(TEST_PROTOCOL, MSG_ECHO, b"x")
        agent.close()


def test_no_platform_is_a_clear_error(short_tmp: Path) -> None:
    with pytest.raises(TransportError, match="cannot reach the platform's control socket"):
        ShmTransport(short_tmp / "nothing")


@pytest.mark.parametrize("doorbell", ["eventfd", "poll"])
def test_faults_against_a_real_platform_process(short_tmp: Path, platform_process,
                                                doorbell: str) -> None:
    """Late reply, no reply, platform killed mid-message, restarted platform."""
    path = short_tmp / "ch"
    proc = platform_process("--shm", str(path), "--doorbell", doorbell).start()
    agent = Agent(ShmTransport(path, busy_timeout_s=5), timeout_s=0.2)

    with pytest.raises(ScmiTimeout, match="message 0x4"):
        agent.call(TEST_PROTOCOL, MSG_DELAY, struct.pack("<I", 400))
    agent.timeout_s = 5
    # the next send waits for the channel, keeps the late reply, then goes through
    assert agent.call(TEST_PROTOCOL, MSG_ECHO, b"next") == b"next"
    assert [(e.header.message_id, e.late) for e in agent.errors] == [(MSG_DELAY, True)]

    agent.timeout_s = 0.2
    with pytest.raises(ScmiTimeout, match="within 200 ms"):
        agent.call(TEST_PROTOCOL, MSG_HANG, struct.pack("<I", 60_000))

    proc.kill()  # mid-message: the HANG command is still being handled
    agent.timeout_s = 5
    started = time.monotonic()
    with pytest.raises(TransportError, match="platform is gone"):
        agent.call(TEST_PROTOCOL, MSG_ECHO, b"dead?")
    assert time.monotonic() - started < 5
    agent.close()

    platform_process("--shm", str(path), "--doorbell", doorbell).start()
    again = Agent(ShmTransport(path), timeout_s=5)
    assert again.call(TEST_PROTOCOL, MSG_ECHO, b"back") == b"back"
    again.close()


@given(st.binary(min_size=0x1C, max_size=0x200), st.sampled_from([0, 2]))
@settings(max_examples=60)
def test_front_end_answers_an_area_exactly_as_platform_serve_area(area_bytes: bytes,
                                                                   status: int) -> None:
    """The front-end's one-call hot path (take_command, handle_bytes, write the reply)
    leaves the A2P area byte-for-byte as Platform.serve_area does, including CHANNEL_
    ERROR for lengths it cannot read and for non-commands, for any area the agent hands
    over (channel_status without FREE)."""
    image = bytearray(area_bytes.ljust(0x200, b"\0"))
    struct.pack_into("<I", image, 0x04, status)
    reference = bytearray(image)
    make_platform().serve_area(SmtArea(reference))
    with tempfile.TemporaryDirectory(prefix="mlt-", dir="/tmp") as d:
        front = ShmFrontEnd(make_platform(), Path(d) / "ch")
        try:
            front.area._view[:0x200] = image
            front._serve_one()
            assert bytes(front.area._view[:0x200]) == bytes(reference)
            assert front.messages == 1
        finally:
            front.stop()


def test_a_ring_with_the_channel_free_is_ignored(short_tmp: Path) -> None:
    front = ShmFrontEnd(make_platform(), short_tmp / "ch")
    try:
        before = bytes(front.area._view[:0x40])
        front._serve_one()  # the area is FREE after reset: nothing was handed over
        assert bytes(front.area._view[:0x40]) == before and front.messages == 0
    finally:
        front.stop()
