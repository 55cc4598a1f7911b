"""The FUSE raw-mode tree against protocol.md §1.8, and RawTransport over it."""

from __future__ import annotations

import errno
import os
import select
import stat
import struct
import time
from pathlib import Path

import pytest
from platforms import MSG_DELAY, MSG_ECHO, TEST_PROTOCOL, make_platform

from memlat.errors import ScmiTimeout, TransportError
from memlat.frontends.fuse_raw import RawConfig, RawFuse
from memlat.scmi.agent import Agent
from memlat.scmi.header import Header
from memlat.scmi.message import Message
from memlat.transports.raw import RawTransport


@pytest.fixture
def raw_tree(mountpoint: Path):
    front = RawFuse(make_platform(), mountpoint,
                    config=RawConfig(max_rx_timeout_ms=100, tx_max_msg=3)).start()
    yield mountpoint
    front.stop()


def _cmd(token: int, payload: bytes = b"", msg: int = MSG_ECHO,
         proto: int = TEST_PROTOCOL) -> bytes:
    return Message(Header(msg, proto, token), payload).to_bytes()


def _wait_readable(fd: int, timeout_ms: int = 5000) -> bool:
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(timeout_ms))


def test_tree_layout_modes_and_transport_files(raw_tree: Path) -> None:
    assert sorted(os.listdir(raw_tree / "raw")) == sorted(
        ["message", "message_async", "message_poll", "message_poll_async", "notification",
         "errors", "reset"])
    modes = {n: stat.S_IMODE(os.stat(raw_tree / "raw" / n).st_mode)
             for n in os.listdir(raw_tree / "raw")}
    assert modes["message"] == modes["message_poll"] == 0o600
    assert modes["errors"] == modes["notification"] == 0o400
    assert modes["reset"] == 0o200
    t = raw_tree / "transport"
    assert (t / "max_msg_size").read_text() == "104\n"
    assert (t / "max_rx_timeout_ms").read_text() == "100\n"
    assert (t / "tx_max_msg").read_text() == "3\n"
    assert (t / "type").read_text() == "mailbox\n"
    assert (t / "is_atomic").read_text() == "N\n"


@pytest.mark.parametrize(("count", "code"), [(0, errno.EINVAL), (3, errno.EINVAL),
                                             (109, errno.ENOSPC), (500, errno.ENOSPC)])
def test_write_rules(raw_tree: Path, count: int, code: int) -> None:
    fd = os.open(raw_tree / "raw" / "message", os.O_RDWR | os.O_NONBLOCK)
    try:
        with pytest.raises(OSError) as info:
            os.write(fd, bytes(count) if count else b"")
            if count == 0:  # a 0-byte write never reaches FUSE; the kernel returns 0
                raise OSError(errno.EINVAL, "zero")
        assert info.value.errno == code
    finally:
        os.close(fd)


def test_one_message_per_read_then_eof_and_eagain(raw_tree: Path) -> None:
    fd = os.open(raw_tree / "raw" / "message", os.O_RDWR | os.O_NONBLOCK)
    try:
        with pytest.raises(BlockingIOError):
            os.read(fd, 256)  # nothing queued: EAGAIN
        assert os.write(fd, _cmd(7, b"abcdef")) == 10  # whole message, count returned
        assert _wait_readable(fd)
        reply = os.read(fd, 256)
        assert reply == _cmd(7, struct.pack("<i", 0) + b"abcdef")
        assert os.read(fd, 256) == b""  # EOF at the message boundary
        with pytest.raises(BlockingIOError):
            os.read(fd, 256)
        # raw_mode.c common_read left the file position at the end of that reply, and
        # common_write copies at the position but sends the buffer from offset 0: on the
        # same open file the next message goes out as the stale bytes of the first
        os.write(fd, _cmd(8, b"0123456789"))
        assert _wait_readable(fd)
        stale = os.read(fd, 256)
        assert stale[:4] == _cmd(7, b"")[:4]  # token 7 again, not 8
        assert os.read(fd, 256) == b""
    finally:
        os.close(fd)
    # so an agent opens the file anew for every message (transports/raw.py does)
    fd = os.open(raw_tree / "raw" / "message", os.O_RDWR | os.O_NONBLOCK)
    try:
        # a short read continues the same message, then EOF
        os.write(fd, _cmd(8, b"0123456789"))
        assert _wait_readable(fd)
        first = os.read(fd, 5)
        rest = os.read(fd, 256)
        assert first + rest == _cmd(8, struct.pack("<i", 0) + b"0123456789")
        assert os.read(fd, 256) == b""
    finally:
        os.close(fd)


def test_blocking_read_waits_for_the_reply(raw_tree: Path) -> None:
    fd = os.open(raw_tree / "raw" / "message_async", os.O_RDWR)
    try:
        os.write(fd, _cmd(9, struct.pack("<I", 20), msg=MSG_DELAY))
        assert os.read(fd, 256)[:4] == Header(MSG_DELAY, TEST_PROTOCOL, 9).to_bytes()
    finally:
        os.close(fd)


def test_late_reply_goes_to_errors_and_reset_flushes(raw_tree: Path) -> None:
    msg = os.open(raw_tree / "raw" / "message", os.O_RDWR | os.O_NONBLOCK)
    errs = os.open(raw_tree / "raw" / "errors", os.O_RDONLY | os.O_NONBLOCK)
    try:
        os.write(msg, _cmd(11, struct.pack("<I", 300), msg=MSG_DELAY))  # > 100 ms timeout
        assert _wait_readable(errs)
        late = os.read(errs, 256)
        assert Header.from_bytes(late).token == 11
        with pytest.raises(BlockingIOError):
            os.read(msg, 256)  # never queued on message
        # queue depth tx_max_msg=3: a fourth unread reply is dropped
        for token in range(20, 24):
            os.write(msg, _cmd(token, b"q"))
            time.sleep(0.02)  # the reply frees the xfer (a pool of tx_max_msg, ENOMEM)
        time.sleep(0.3)
        got = []
        while True:
            try:
                data = os.read(msg, 256)
            except BlockingIOError:
                break
            if data:
                got.append(Header.from_bytes(data).token)
        assert got == [20, 21, 22]
        # reset flushes whatever is queued
        os.write(msg, _cmd(30, b"r"))
        time.sleep(0.2)
        reset = os.open(raw_tree / "raw" / "reset", os.O_WRONLY)
        os.write(reset, b"1")
        os.close(reset)
        with pytest.raises(BlockingIOError):
            os.read(msg, 256)
    finally:
        os.close(msg)
        os.close(errs)


def test_raw_transport_end_to_end_with_timeouts(raw_tree: Path) -> None:
    transport = RawTransport(raw_tree)
    assert transport.message_path.name == "message_poll"  # preferred when present
    assert transport.max_msg_size == 104 and transport.max_rx_timeout_ms == 100
    agent = Agent(transport, timeout_s=transport.suggested_timeout_s)
    assert agent.call(TEST_PROTOCOL, MSG_ECHO, b"through the kernel files") == \
        b"through the kernel files"
    with pytest.raises(ScmiTimeout, match="message 0x4"):
        agent.call(TEST_PROTOCOL, MSG_DELAY, struct.pack("<I", 250))
    time.sleep(0.3)
    assert agent.call(TEST_PROTOCOL, MSG_ECHO, b"x") == b"x"
    assert [(e.header.message_id, e.late) for e in agent.errors] == [(MSG_DELAY, True)]
    with pytest.raises(TransportError, match="ENOSPC"):
        transport.send(bytes(4 + 105))
    agent.close()


def test_raw_transport_needs_a_raw_directory(tmp_path: Path) -> None:
    with pytest.raises(TransportError, match="no raw/ directory"):
        RawTransport(tmp_path)
