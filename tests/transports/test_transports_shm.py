"""Shared-memory SMT channel: doorbells, completion modes, layout, and faults."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import mmap
import os
import socket
import stat
import struct
import tempfile
import threading
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


# -- agents that misuse their doorbells (the platform must not care) ----------------------
def _raw_agent(path: Path) -> tuple[socket.socket, list[int], mmap.mmap]:
    """The handshake by hand: control socket, [memory, A2P write end, P2A read end]."""
    ctl = socket.socket(socket.AF_UNIX)
    ctl.connect(control_path(path))
    _data, fds, _flags, _addr = socket.recv_fds(ctl, 4096, 4)
    return ctl, fds, mmap.mmap(fds[0], FILE_SIZE)


def _serves_a_new_agent(path: Path) -> None:
    deadline = time.monotonic() + 5
    while True:  # the old agent's control socket closing is seen asynchronously
        try:
            agent = Agent(ShmTransport(path), timeout_s=2)
            break
        except TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    assert agent.call(TEST_PROTOCOL, MSG_ECHO, b"next") == b"next"
    agent.close()


def _stops_promptly(front: ShmFrontEnd) -> None:
    stopper = threading.Thread(target=front.stop)
    stopper.start()
    stopper.join(10)  # a hang check, not a speed check: stop() waits 0.5 s at most
    assert not stopper.is_alive()


def test_agent_making_its_eventfd_doorbell_non_blocking_is_still_served(
        short_tmp: Path) -> None:
    """An eventfd is one open file on both sides: O_NONBLOCK set by the agent reaches
    the platform's blocking read, which then waits in poll() instead."""
    path = short_tmp / "ch"
    front = ShmFrontEnd(make_platform(), path).start()
    try:
        transport = ShmTransport(path)
        agent = Agent(transport, timeout_s=2)
        assert agent.call(TEST_PROTOCOL, MSG_ECHO, b"a") == b"a"
        os.set_blocking(transport._fds[1], False)
        for i in range(20):
            assert agent.call(TEST_PROTOCOL, MSG_ECHO, bytes([i])) == bytes([i])
        agent.close()
        _serves_a_new_agent(path)
    finally:
        _stops_promptly(front)
    assert not os.path.exists(control_path(path))


@pytest.mark.parametrize("attack", ["steal", "fill"])
def test_agent_stealing_or_filling_its_doorbell_cannot_hang_the_platform(
        short_tmp: Path, attack: str, caplog: pytest.LogCaptureFixture) -> None:
    """The agent reads its A2P eventfd (taking the platform's own wake-up ring) or holds
    its counter full, and goes on doing so after it disconnects: the platform abandons
    that doorbell thread with a log line, serves the next agent and stops promptly."""
    path = short_tmp / "ch"
    front = ShmFrontEnd(make_platform(), path).start()
    ctl, fds, mm = _raw_agent(path)
    a2p = fds[1]
    os.set_blocking(a2p, True)
    done = threading.Event()

    def misuse() -> None:
        while not done.is_set():
            with contextlib.suppress(OSError):
                if attack == "steal":
                    os.eventfd_read(a2p)
                else:
                    os.eventfd_write(a2p, 0xFFFF_FFFF_FFFF_FFFE)

    thieves = [threading.Thread(target=misuse, daemon=True) for _ in range(3)]
    try:
        for t in thieves:
            t.start()
        time.sleep(0.05)
        ctl.close()  # disconnect, still holding the doorbell
        _serves_a_new_agent(path)
    finally:
        _stops_promptly(front)
        done.set()
        with contextlib.suppress(OSError):
            os.eventfd_write(a2p, 1)  # let a blocked thief go
        mm.close()
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
    assert not os.path.exists(control_path(path))


def test_full_pipe_doorbells_neither_crash_nor_flood_the_log(
        short_tmp: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A2P pipe full when the agent goes (the platform's wake-up ring gets EAGAIN), and
    a P2A pipe the agent never reads while asking for interrupts: replies stay right,
    nothing is logged as an error, the platform keeps serving."""
    caplog.set_level(logging.WARNING)
    path = short_tmp / "ch"
    front = ShmFrontEnd(make_platform(), path, doorbell="pipe").start()
    try:
        ctl, fds, mm = _raw_agent(path)
        a2p, p2a = fds[1], fds[2]
        fcntl.fcntl(p2a, fcntl.F_SETPIPE_SZ, 4096)  # one page: full after 4096 replies
        area = SmtArea(memoryview(mm)[:0x200])
        command = struct.pack("<I", TEST_PROTOCOL << 10 | MSG_ECHO) + b"ping"
        for _ in range(4200):  # the P2A pipe is never read
            assert area.post_command(command, interrupt=True)
            os.write(a2p, b"\x01")
            while (reply := area.take_response()) is None:
                time.sleep(0)  # let the platform's thread (same process) have the GIL
            assert reply[8:] == b"ping"
        with contextlib.suppress(BlockingIOError):
            while True:  # now fill the A2P pipe, then go
                os.write(a2p, bytes(65536))
        ctl.close()
        _serves_a_new_agent(path)
        assert front.running
        del area  # its view of the mapping
        mm.close()
        for fd in fds:
            os.close(fd)
    finally:
        _stops_promptly(front)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_poll_doorbell_serves_each_new_agents_first_command(short_tmp: Path) -> None:
    """The poll doorbell's sequence word starts again at 0 for each agent; the platform's
    memory of the last agent's count must not hide the new agent's first bump."""
    path = short_tmp / "ch"
    with ShmFrontEnd(make_platform(), path, doorbell="poll"):
        for i in range(150):  # one call per agent: the case that lost commands
            agent = Agent(ShmTransport(path), timeout_s=2)
            assert agent.call(TEST_PROTOCOL, MSG_ECHO, bytes([i % 256])) == bytes([i % 256])
            agent.close()
            time.sleep(0.002)
