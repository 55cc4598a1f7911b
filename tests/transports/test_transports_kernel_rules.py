"""Each raw-mode and mailbox-test rule of docs/transports.md, with real file operations on
a mounted tree (the kernel function each rule follows is named in the test's docstring),
plus the external agent's exact access pattern against a served `--mailbox-fuse` tree."""

from __future__ import annotations

import errno
import os
import select
import struct
import time
from pathlib import Path

import pytest
from platforms import MSG_DELAY, MSG_ECHO, TEST_PROTOCOL, make_platform

from memlat.frontends.fuse_mailbox import MailboxFuse
from memlat.frontends.fuse_raw import RawConfig, RawFuse
from memlat.scmi.header import Header, MessageType
from memlat.scmi.message import Message
from memlat.scmi.smt import SmtArea
from memlat.transports.mailbox import MBOX_MAX_MSG_LEN

BASE = 0x10
PROTOCOL_VERSION = 0x0


def _cmd(token: int, payload: bytes = b"", msg: int = MSG_ECHO,
         proto: int = TEST_PROTOCOL) -> bytes:
    return Message(Header(msg, proto, token), payload).to_bytes()


def _drain(fd: int) -> list[bytes]:
    out = []
    while True:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return out
        if data:
            out.append(data)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def raw2(mountpoint: Path):
    """A raw tree with 2 buffers per queue and a 60 ms reply timeout."""
    front = RawFuse(make_platform(), mountpoint,
                    config=RawConfig(max_rx_timeout_ms=60, tx_max_msg=2)).start()
    yield mountpoint, front
    front.stop()


# -- raw mode ------------------------------------------------------------------------------
def test_errors_queue_is_circular_and_keeps_the_newest(raw2) -> None:
    """scmi_raw_message_report: a full errors queue re-uses the oldest buffer.
    3 late replies with 2 buffers: Linux holds tokens [1, 2]."""
    tree, front = raw2
    msg = os.open(tree / "raw" / "message", os.O_RDWR | os.O_NONBLOCK)
    errs = os.open(tree / "raw" / "errors", os.O_RDONLY | os.O_NONBLOCK)
    try:
        for token in (0, 1, 2):  # each 100 ms > 60 ms: all three are late
            os.write(msg, _cmd(token, struct.pack("<I", 100), msg=MSG_DELAY))
            time.sleep(0.07)  # the previous xfer timed out: back in the pool of 2
        time.sleep(0.4)
        assert [Header.from_bytes(m).token for m in _drain(errs)] == [1, 2]
        assert front.operations.errors.overwritten == 1
        assert _drain(msg) == []  # late replies never reach message
    finally:
        os.close(msg)
        os.close(errs)


def test_reply_queue_drops_the_newest(raw2) -> None:
    """scmi_raw_message_report: a full reply queue drops the new report."""
    tree, front = raw2
    msg = os.open(tree / "raw" / "message", os.O_RDWR | os.O_NONBLOCK)
    try:
        for token in (5, 6, 7):
            os.write(msg, _cmd(token, b"x"))
            time.sleep(0.03)  # let the reply land: the xfer pool is tx_max_msg too
        time.sleep(0.1)
        assert [Header.from_bytes(m).token for m in _drain(msg)] == [5, 6]
        assert front.operations.replies.dropped == 1
    finally:
        os.close(msg)


def test_notification_queue_is_circular(raw2) -> None:
    """scmi_raw_message_report: the notification queue is circular as well, with
    tx_max_msg buffers (scmi_raw_queue_init), read one message per read sequence."""
    tree, front = raw2
    q = front.operations.notifications
    assert q.depth == 2 and q.circular
    for n in range(3):
        q.put(Header(0, BASE, n, MessageType.NOTIFICATION).to_bytes())
    fd = os.open(tree / "raw" / "notification", os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert [Header.from_bytes(m).token for m in _drain(fd)] == [1, 2]
    finally:
        os.close(fd)


def test_reply_is_command_header_status_and_values(raw2) -> None:
    """scmi_xfer_raw_get_init + scmi_xfer_raw_collect: the reply carries the command's
    own header re-packed (bits 31:28 dropped), the status word, then the values; the
    platform received exactly count - 4 payload bytes."""
    tree, _ = raw2
    msg = os.open(tree / "raw" / "message", os.O_RDWR)
    try:
        header = Header(MSG_ECHO, TEST_PROTOCOL, 9).to_bytes()
        dirty = (int.from_bytes(header, "little") | 0xF000_0000).to_bytes(4, "little")
        assert os.write(msg, dirty + b"abc") == 7
        assert os.read(msg, 4096) == header + bytes(4) + b"abc"
        assert os.read(msg, 4096) == b""  # EOF at the message boundary
    finally:
        os.close(msg)


def test_reply_larger_than_a_raw_buffer_is_dropped(mountpoint: Path) -> None:
    """scmi_raw_queue_init sizes buffers max_msg_size + 4; header + status + values
    beyond that cannot be collected and the reply is dropped, not truncated."""
    front = RawFuse(make_platform(), mountpoint,
                    config=RawConfig(max_msg_size=16, max_rx_timeout_ms=200)).start()
    try:
        msg = os.open(mountpoint / "raw" / "message", os.O_RDWR | os.O_NONBLOCK)
        try:
            os.write(msg, _cmd(1, b"12345678901x"))  # 12 values: 4+4+12 = 20 = 16 + 4
            os.write(msg, _cmd(2, b"123456789012x"))  # 13 values: 21 bytes, dropped
            time.sleep(0.15)
            assert [len(m) for m in _drain(msg)] == [20]
            assert front.operations.uncollectable == 1
        finally:
            os.close(msg)
    finally:
        front.stop()


def test_write_errno_rules(raw2) -> None:
    """common_write: count > max_msg_size + 4 -> ENOSPC; scmi_xfer_raw_get_init:
    count < 4 -> EINVAL; write on a read-only queue file -> EINVAL (no write op)."""
    tree, _ = raw2
    msg = os.open(tree / "raw" / "message", os.O_RDWR)
    errs = os.open(tree / "raw" / "errors", os.O_RDWR)
    try:
        for count, code in ((104 + 5, errno.ENOSPC), (3, errno.EINVAL)):
            with pytest.raises(OSError) as info:
                os.write(msg, bytes(count))
            assert info.value.errno == code
        with pytest.raises(OSError) as info:
            os.write(errs, _cmd(1))
        assert info.value.errno == errno.EINVAL
    finally:
        os.close(msg)
        os.close(errs)


def test_busy_token_retries_then_ebusy_and_xfer_pool_enomem(raw2) -> None:
    """scmi_xfer_raw_get_init: a token still in flight is retried 10 times sleeping
    max_rx_timeout_ms/10 (then EBUSY; here the first reply frees it in time); more
    in-flight xfers than tx_max_msg -> ENOMEM (scmi_xfer_get on an empty pool)."""
    tree, _ = raw2
    msg = os.open(tree / "raw" / "message", os.O_RDWR | os.O_NONBLOCK)
    try:
        os.write(msg, _cmd(3, struct.pack("<I", 40), msg=MSG_DELAY))
        start = time.monotonic()
        os.write(msg, _cmd(3, struct.pack("<I", 1), msg=MSG_DELAY))  # waits for token 3
        assert time.monotonic() - start >= 0.012
        time.sleep(0.2)
        _drain(msg)
        os.write(msg, _cmd(10, struct.pack("<I", 150), msg=MSG_DELAY))
        os.write(msg, _cmd(11, struct.pack("<I", 1), msg=MSG_DELAY))
        with pytest.raises(OSError) as info:
            os.write(msg, _cmd(12, b"x"))
        assert info.value.errno == errno.ENOMEM
    finally:
        os.close(msg)


def test_poll_registers_only_and_events_zero_times_out(raw2) -> None:
    """scmi_test_dbg_raw_common_poll: poll_wait + mask, never a wake-up of its own. With
    a reply queued, poll(events=0) must time out (not spin); POLLIN is reported; a
    poller sleeping on an empty queue is woken when the reply lands."""
    tree, _ = raw2
    msg = os.open(tree / "raw" / "message", os.O_RDWR | os.O_NONBLOCK)
    try:
        p = select.poll()
        p.register(msg, select.POLLIN)
        assert p.poll(50) == []
        os.write(msg, _cmd(4, struct.pack("<I", 30), msg=MSG_DELAY))
        start = time.monotonic()
        assert p.poll(2000) == [(msg, select.POLLIN)]  # woken by the reply
        assert time.monotonic() - start < 1.0
        zero = select.poll()
        zero.register(msg, 0)
        start = time.monotonic()
        assert zero.poll(300) == []
        assert 0.28 <= time.monotonic() - start < 0.6
        assert len(_drain(msg)) == 1
    finally:
        os.close(msg)


def test_blocking_read_waits_and_nonblocking_gets_eagain(raw2) -> None:
    """scmi_raw_message_dequeue: O_NONBLOCK -> EAGAIN on an empty queue; a blocking
    read sleeps until a reply is queued."""
    tree, _ = raw2
    nb = os.open(tree / "raw" / "message", os.O_RDWR | os.O_NONBLOCK)
    blocking = os.open(tree / "raw" / "message_async", os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            os.read(nb, 64)
        os.write(blocking, _cmd(6, struct.pack("<I", 40), msg=MSG_DELAY))
        start = time.monotonic()
        data = os.read(blocking, 64)
        assert Header.from_bytes(data).token == 6 and time.monotonic() - start >= 0.02
    finally:
        os.close(nb)
        os.close(blocking)


def test_reset_flushes_every_queue(raw2) -> None:
    """scmi_xfer_raw_reset: a write to reset flushes the reply, notification and
    errors queues and returns count."""
    tree, front = raw2
    msg = os.open(tree / "raw" / "message", os.O_RDWR | os.O_NONBLOCK)
    try:
        os.write(msg, _cmd(1, b"x"))
        front.operations.errors.put(_cmd(2))
        front.operations.notifications.put(_cmd(3))
        time.sleep(0.1)
        reset = os.open(tree / "raw" / "reset", os.O_WRONLY)
        assert os.write(reset, b"anything") == 8
        os.close(reset)
        assert _drain(msg) == []
        assert not front.operations.errors.items and not front.operations.notifications.items
    finally:
        os.close(msg)


# -- mailbox-test --------------------------------------------------------------------------
def _smt_command(token: int) -> bytes:
    buf = bytearray(MBOX_MAX_MSG_LEN)
    SmtArea(buf).write_command(Message(Header(PROTOCOL_VERSION, BASE, token), b""),
                               interrupt=True)
    return bytes(buf)


def test_mailbox_signal_bytes_overlay_until_a_message_frees_them(mountpoint: Path) -> None:
    """mbox_test_signal_write: kzalloc once, copy_from_user over it; freed by the next
    message write (mbox_test_message_write)."""
    front = MailboxFuse(make_platform(), mountpoint).start()
    try:
        sig = os.open(mountpoint / "signal", os.O_WRONLY)
        os.write(sig, b"abcdefgh")
        os.write(sig, b"xy")
        assert front.operations.signal == b"xycdefgh"
        with pytest.raises(OSError) as info:
            os.write(sig, b"123456789")
        assert info.value.errno == errno.EINVAL
        os.close(sig)
        msg = os.open(mountpoint / "message", os.O_RDWR)
        os.write(msg, _smt_command(1))
        os.close(msg)
        assert front.operations.signal is None
    finally:
        front.stop()


def test_mailbox_poll_events_zero_times_out_without_spinning(mountpoint: Path) -> None:
    """mbox_test_message_poll only poll_waits: a ready reply with events 0 times out."""
    front = MailboxFuse(make_platform(), mountpoint).start()
    try:
        msg = os.open(mountpoint / "message", os.O_RDWR)
        os.write(msg, _smt_command(2))
        p = select.poll()
        p.register(msg, 0)
        cpu0, start = time.process_time(), time.monotonic()
        assert p.poll(400) == []
        assert 0.38 <= time.monotonic() - start < 0.8
        assert time.process_time() - cpu0 < 0.1  # the server runs in this process
        ready = select.poll()
        ready.register(msg, select.POLLIN)
        assert ready.poll(0) == [(msg, select.POLLIN)]
        os.close(msg)
    finally:
        front.stop()


def test_external_agent_access_pattern_raw_read(short_tmp: Path, fuse_ok: None,
                                                platform_process) -> None:
    """ARM scmi-tests' Linux agent: 128-byte write to message, write signal, poll with
    events 0 and a 1000 ms timeout, then a raw 128-byte read (the patched driver),
    against `memlat platform serve --mailbox-fuse DIR --mailbox-read raw`."""
    directory = short_tmp / "mbox"
    server = platform_process("--mailbox-fuse", str(directory), "--mailbox-read", "raw")
    server.start()
    assert server.proc is not None
    msg = os.open(directory / "message", os.O_RDWR)
    try:
        assert os.write(msg, _smt_command(7)) == MBOX_MAX_MSG_LEN
        sig = os.open(directory / "signal", os.O_WRONLY)
        os.write(sig, b"\x01")
        os.close(sig)
        p = select.poll()
        p.register(msg, 0)
        cpu0, start = _cpu_seconds(server.proc.pid), time.monotonic()
        assert p.poll(1000) == []
        elapsed = time.monotonic() - start
        cpu = _cpu_seconds(server.proc.pid) - cpu0
        assert 0.99 <= elapsed < 1.1
        assert cpu < 0.1
        raw = os.read(msg, MBOX_MAX_MSG_LEN)
    finally:
        os.close(msg)
    assert len(raw) == MBOX_MAX_MSG_LEN
    reply = SmtArea(bytearray(raw)).read_response()
    assert reply.header == Header(PROTOCOL_VERSION, BASE, 7)
    assert reply.status == 0 and reply.values == (0x20000).to_bytes(4, "little")
    assert server.terminate() == 0
    assert not directory.exists()  # the mount directory it created is gone
