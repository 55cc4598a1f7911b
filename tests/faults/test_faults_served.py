"""Reliability suite, short form (issue 17): a served platform no client can take down.

Each test runs one scenario of `memlat.bench.faults` (the long form is
`memlat bench --suite faults`) at CI size, or checks one fault directly, with real
sockets, memfds and processes. Random generators are seeded.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import time
from pathlib import Path

import pytest

from memlat.bench import SUITES, faults
from memlat.errors import TransportError
from memlat.frontends.unix import UnixFrontEnd
from memlat.scmi.agent import Agent
from memlat.scmi.header import Header
from memlat.scmi.protocols.base_platform import make_platform
from memlat.scmi.status import Status
from memlat.transports.shm import FILE_SIZE, map_channel
from memlat.transports.unix import UnixTransport, encode_frame


def test_faults_suite_is_registered() -> None:
    assert SUITES["faults"] == "memlat.bench.faults:run"


def test_fuzz_refused_commands_change_no_state_cpucp_included() -> None:
    got = faults.fuzz(20_000, seed=17)
    assert got["messages"] == 20_000
    assert got["exceptions"] == 0 and got["malformed"] == 0
    assert got["refused_state_changes"] == 0
    # the mix reaches every outcome, so the zeros above are not vacuous
    assert got["refused"] > 1000 and got["successes"] > 100 and got["transport_refusals"] > 0
    assert got["qcom_refused"] > 1000 and got["qcom_successes"] > 100  # the CPUCP is hit


def test_probes_succeed_among_non_readers_and_idle_connections(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="memlat.frontends.unix")
    got = faults.unix_crowd(probes=3, flooders=20, idle=200)
    assert got["probes_ok"] == 3
    assert got["probes_started_with_flooders_attached"] == 3
    assert got["flooders_cut_off"] == 20  # each with a log line, none blocked the server
    assert got["server_running"] == 1


def test_non_reader_is_cut_off_with_a_log_line(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="memlat.frontends.unix")
    path = Path("/tmp") / f"mlf-{os.getpid()}-cut.sock"
    with UnixFrontEnd(make_platform(), path, out_limit=4096) as front:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(os.fspath(path))
        frame = encode_frame(Header(0, 0x10, 1).to_bytes())
        deadline = time.monotonic() + 10
        with pytest.raises(OSError):  # EPIPE/ECONNRESET once the server cut us off
            while time.monotonic() < deadline:
                sock.send(frame * 64)
        while front.cut_off == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert front.cut_off == 1
        sock.close()
        assert "not reading its replies" in caplog.text and "limit 4096" in caplog.text
        # the server still answers others
        agent = Agent(UnixTransport(path), timeout_s=5)
        assert agent.xfer(0x10, 0).status == Status.SUCCESS
        agent.close()


def test_one_clients_garbage_drops_only_that_client() -> None:
    path = Path("/tmp") / f"mlf-{os.getpid()}-bad.sock"
    with UnixFrontEnd(make_platform(), path) as front:
        good = Agent(UnixTransport(path), timeout_s=5)
        bad = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        bad.connect(os.fspath(path))
        bad.sendall(struct.pack("<I", 0xFFFF_FFFF) + b"junk")  # corrupted frame length
        assert bad.recv(16) == b""  # dropped
        reset = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        reset.connect(os.fspath(path))
        reset.sendall(encode_frame(Header(0, 0x10, 2).to_bytes()) * 1000)
        reset.close()  # gone with replies unread
        for _ in range(20):
            assert good.xfer(0x10, 0).status == Status.SUCCESS
        assert front.running
        good.close()
        bad.close()


def test_server_survives_emfile_and_serves_after() -> None:
    got = faults.unix_emfile(connections=60, nofile=48)
    assert got == {"connections": 60, "nofile": 48, "alive_under_load": 1,
                   "probe_ok_after": 1, "server_alive": 1}


def test_agent_waits_its_connect_timeout_on_a_full_backlog() -> None:
    got = faults.unix_backlog(0.3)
    assert got["waited_s"] >= 0.3  # not an immediate EAGAIN
    assert got["timeout_message_ok"] == 1 and got["joined_when_accepted"] == 1


def test_platform_size_cap_holds_over_the_socket_and_costs_nothing() -> None:
    platform = make_platform()
    header = Header(0x0, 0x10, 3).to_bytes()
    started = time.monotonic()
    assert platform.handle_bytes(header + bytes(16 << 20)) == header + struct.pack("<i", -10)
    assert time.monotonic() - started < 0.5  # was 3.2 s under the platform lock
    path = Path("/tmp") / f"mlf-{os.getpid()}-cap.sock"
    with UnixFrontEnd(platform, path):
        transport = UnixTransport(path)
        transport.send(header + bytes(105))
        reply = transport.receive(5)
        assert reply == header + struct.pack("<i", Status.PROTOCOL_ERROR)
        transport.close()


def test_truncating_the_shared_memory_is_refused_and_nothing_is_left() -> None:
    got = faults.shm_truncate(round_trips=50)
    assert got["attempts"] >= 6  # platform's and agent's descriptors, 3 sizes each
    assert got["truncations_refused"] == got["attempts"]
    assert got["round_trips_ok"] == 50 and got["files_left"] == 0


def test_rapid_connect_close_is_never_refused() -> None:
    got = faults.shm_cycles(2000)
    assert got == {"cycles": 2000, "refused": 0, "round_trips_ok": 20, "files_left": 0}


def test_agent_refuses_unsealed_channel_memory() -> None:
    fd = os.memfd_create("not-sealed", os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, FILE_SIZE)
        with pytest.raises(TransportError, match="lacks F_SEAL_SHRINK and F_SEAL_GROW"):
            map_channel(fd, "shm:test")
    finally:
        os.close(fd)
