"""Unix-socket transport: framing, permissions, several clients, and faults."""

from __future__ import annotations

import itertools
import os
import socket
import stat
import struct
import threading
import time
from pathlib import Path

import pytest
from platforms import (
    MSG_DELAY,
    MSG_ECHO,
    MSG_HANG,
    TEST_PROTOCOL,
    make_platform,
)

from memlat.errors import ScmiTimeout, TransportError
from memlat.frontends.unix import UnixFrontEnd
from memlat.scmi.agent import Agent
from memlat.transports.unix import MAX_FRAME, FrameBuffer, UnixTransport


def test_frame_buffer_splits_a_stream_at_frame_boundaries() -> None:
    frames = FrameBuffer("t")
    stream = struct.pack("<I", 4) + b"abcd" + struct.pack("<I", 6) + b"efghij"
    frames.feed(stream[:7])
    assert frames.next_frame() is None
    frames.feed(stream[7:])
    assert frames.next_frame() == b"abcd"
    assert frames.next_frame() == b"efghij"
    assert frames.next_frame() is None


@pytest.mark.parametrize("length", [0, 3, MAX_FRAME + 1, 0xFFFF_FFFF])
def test_frame_buffer_names_a_corrupted_length(length: int) -> None:
    frames = FrameBuffer("unix:/x")
    frames.feed(struct.pack("<I", length) + bytes(8))
    with pytest.raises(TransportError, match=f"corrupted frame length {length}"):
        frames.next_frame()


def test_round_trips_and_socket_is_owner_only(short_tmp: Path) -> None:
    path = short_tmp / "p.sock"
    with UnixFrontEnd(make_platform(), path) as front:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        agent = Agent(UnixTransport(path), timeout_s=5)
        for i in range(20):
            payload = bytes(range(i, i + i % 7))
            assert agent.call(TEST_PROTOCOL, MSG_ECHO, payload) == payload
        agent.close()
        assert front.messages == 20
    assert not path.exists()  # socket removed on stop


def test_several_clients_at_once(short_tmp: Path) -> None:
    path = short_tmp / "m.sock"
    results: dict[int, list[bytes]] = {}
    with UnixFrontEnd(make_platform(), path):
        def client(n: int) -> None:
            agent = Agent(UnixTransport(path), timeout_s=5)
            results[n] = [agent.call(TEST_PROTOCOL, MSG_ECHO, bytes([n, i])) for i in range(25)]
            agent.close()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
    assert sorted(results) == [0, 1, 2, 3]
    for n, replies in results.items():
        assert replies == [bytes([n, i]) for i in range(25)]


def test_connect_to_nothing_is_a_clear_error(short_tmp: Path) -> None:
    with pytest.raises(TransportError, match=r"cannot connect.*platform serve --unix"):
        UnixTransport(short_tmp / "none.sock")


def test_corrupted_length_from_the_peer_is_reported(short_tmp: Path) -> None:
    path = str(short_tmp / "bad.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def bad_platform() -> None:
        conn, _ = server.accept()
        conn.recv(4096)
        conn.sendall(struct.pack("<I", 0x7FFF_0000) + bytes(12))  # absurd length
        time.sleep(0.5)
        conn.close()

    t = threading.Thread(target=bad_platform)
    t.start()
    agent = Agent(UnixTransport(path), timeout_s=2)
    with pytest.raises(TransportError, match="corrupted frame length 2147418112"):
        agent.call(TEST_PROTOCOL, MSG_ECHO, b"x")
    agent.close()
    t.join()
    server.close()


def test_faults_against_a_real_platform_process(short_tmp: Path, platform_process) -> None:
    """Late reply, reply that never comes, process killed mid-message, re-probe."""
    path = short_tmp / "f.sock"
    proc = platform_process("--unix", str(path)).start()
    agent = Agent(UnixTransport(path), timeout_s=0.2)

    # a late reply: timeout, then the reply is filed as late when it finally arrives
    with pytest.raises(ScmiTimeout, match="no reply to protocol 0xf0 message 0x4 token"):
        agent.call(TEST_PROTOCOL, MSG_DELAY, struct.pack("<I", 400))
    agent.timeout_s = 5
    assert agent.call(TEST_PROTOCOL, MSG_ECHO, b"after") == b"after"
    assert [e.late for e in agent.errors] == [True]
    assert agent.errors[0].header.message_id == MSG_DELAY

    # a reply that never comes (within any timeout): bounded wait, clear error
    agent.timeout_s = 0.2
    started = time.monotonic()
    with pytest.raises(ScmiTimeout, match="within 200 ms"):
        agent.call(TEST_PROTOCOL, MSG_HANG, struct.pack("<I", 60_000))
    assert time.monotonic() - started < 5  # bounded (generous: not a speed check)

    # killed while that command is still being handled: the agent learns the peer is gone
    proc.kill()
    agent.timeout_s = 5
    with pytest.raises(TransportError, match=r"platform (closed the connection|is gone)"):
        agent.call(TEST_PROTOCOL, MSG_ECHO, b"dead?")
    agent.close()

    # a restarted platform can be probed again with a fresh transport
    platform_process("--unix", str(path)).start()
    again = Agent(UnixTransport(path), timeout_s=5)
    assert again.call(TEST_PROTOCOL, MSG_ECHO, b"back") == b"back"
    again.close()


def _replies(sock: socket.socket, count: int) -> list[bytes]:
    frames, out = FrameBuffer("test"), []
    sock.settimeout(5)
    while len(out) < count:
        frame = frames.next_frame()
        if frame is None:
            frames.feed(sock.recv(65536))
        else:
            out.append(frame)
    return out


@pytest.mark.parametrize("chunking", ["whole", "frames", "bytes", "odd"])
def test_every_chunking_of_a_stream_gets_the_same_replies(short_tmp: Path,
                                                          chunking: str) -> None:
    """The front-end answers a recv() holding exactly one whole frame inline and
    anything else through the frame buffer; the replies (and the commands left
    unanswered, like a notification) must not depend on which path ran."""
    commands = [struct.pack("<I", TEST_PROTOCOL << 10 | MSG_ECHO | t << 18) + bytes(range(t))
                for t in range(6)]
    commands.insert(3, struct.pack("<I", 0x10 << 10 | 3 << 8))  # a notification: no reply
    commands.append(struct.pack("<I", 0x10 << 10 | 7 << 18))  # base PROTOCOL_VERSION
    reference = make_platform()
    expected = [r for c in commands if (r := reference.handle_bytes(c)) is not None]
    assert len(expected) == len(commands) - 1
    stream = b"".join(struct.pack("<I", len(c)) + c for c in commands)
    cuts = {"whole": [0, len(stream)],
            "frames": [0, *itertools.accumulate(4 + len(c) for c in commands)],
            "bytes": list(range(len(stream) + 1)),
            "odd": [*range(0, len(stream), 7), len(stream)]}[chunking]
    with UnixFrontEnd(make_platform(), short_tmp / "p.sock") as front:
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(str(short_tmp / "p.sock"))
        for start, end in itertools.pairwise(cuts):
            sock.sendall(stream[start:end])
            if chunking != "whole":
                time.sleep(0.0005)  # let the server see the pieces in separate recv()s
        assert _replies(sock, len(expected)) == expected
        sock.close()
        assert front.messages == len(commands)


def test_replies_owed_before_a_corrupted_length_are_sent_first(short_tmp: Path) -> None:
    """Valid frames, then a corrupted length, in one send(): the valid frames are
    answered before the connection ends, as when the pieces arrive separately."""
    command = struct.pack("<I", TEST_PROTOCOL << 10 | MSG_ECHO) + b"ok"
    with UnixFrontEnd(make_platform(), short_tmp / "p.sock"):
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(str(short_tmp / "p.sock"))
        sock.sendall((struct.pack("<I", len(command)) + command) * 40 + struct.pack("<I", 0))
        replies = _replies(sock, 40)
        assert len(replies) == 40 and all(r[8:] == b"ok" for r in replies)
        assert sock.recv(16) == b""  # then the connection ends
        sock.close()
