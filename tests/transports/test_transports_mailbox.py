"""The FUSE mailbox-test pair against drivers/mailbox/mailbox-test.c semantics."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from platforms import MSG_ECHO, TEST_PROTOCOL, make_platform

from memlat.errors import DecodeError
from memlat.frontends.fuse_mailbox import MailboxFuse
from memlat.scmi.message import Message
from memlat.scmi.smt import SmtArea
from memlat.transports.mailbox import (
    MBOX_HEXDUMP_MAX_LEN,
    MailboxTestClient,
    hexdump,
    parse_hexdump,
)


def test_hexdump_matches_the_kernel_layout() -> None:
    data = bytes(range(0x20, 0xA0))
    dump = hexdump(data)
    lines = dump.decode().split("\n")
    assert len(dump) == MBOX_HEXDUMP_MAX_LEN == 528
    assert lines[0] == "20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d 2e 2f   !\"#$%&'()*+,-./"
    assert lines[6] == ("80 81 82 83 84 85 86 87 88 89 8a 8b 8c 8d 8e 8f  " + "." * 16)
    assert all(len(line) == 65 for line in lines[:8])
    assert parse_hexdump(dump) == data


def test_parse_hexdump_names_the_bad_line() -> None:
    with pytest.raises(DecodeError, match="hex dump line 1"):
        parse_hexdump(hexdump(bytes(128)).replace(b"\n00", b"\nzz", 1))


@pytest.fixture
def mbox(mountpoint: Path):
    front = MailboxFuse(make_platform(), mountpoint).start()
    yield mountpoint, front
    front.stop()


def test_round_trip_through_message_and_signal(mbox) -> None:
    directory, front = mbox
    assert sorted(os.listdir(directory)) == ["message", "signal"]
    client = MailboxTestClient(directory)
    reply = client.xfer(Message.command(TEST_PROTOCOL, MSG_ECHO, b"mailbox", token=5))
    assert reply.header.token == 5 and reply.status == 0 and reply.values == b"mailbox"
    base = client.xfer(Message.command(0x10, 0x0, token=6))
    assert base.values == (0x20000).to_bytes(4, "little")
    assert front.operations.rings == 2
    assert front.operations.signal is None  # freed after each message write


def test_write_limits_and_nonblocking_read(mbox) -> None:
    directory, _ = mbox
    sig = os.open(directory / "signal", os.O_WRONLY)
    msg = os.open(directory / "message", os.O_RDWR | os.O_NONBLOCK)
    try:
        with pytest.raises(OSError) as info:
            os.write(sig, bytes(9))
        assert info.value.errno == errno.EINVAL
        assert os.write(sig, bytes(8)) == 8
        with pytest.raises(OSError) as info:
            os.write(msg, bytes(129))
        assert info.value.errno == errno.EINVAL
        with pytest.raises(BlockingIOError):
            os.read(msg, 1024)
    finally:
        os.close(sig)
        os.close(msg)


def test_polling_flags_raise_no_interrupt_and_reads_clear_the_buffer(mbox) -> None:
    directory, front = mbox
    msg = os.open(directory / "message", os.O_RDWR | os.O_NONBLOCK)
    try:
        buf = bytearray(128)
        SmtArea(buf).write_command(Message.command(TEST_PROTOCOL, MSG_ECHO, b"p"),
                                   interrupt=False)
        os.write(msg, bytes(buf))
        assert front.operations.rings == 1
        with pytest.raises(BlockingIOError):
            os.read(msg, 1024)  # flags 0: no completion interrupt, nothing to read
        SmtArea(buf).write_command(Message.command(TEST_PROTOCOL, MSG_ECHO, b"i"))
        os.write(msg, bytes(buf))
        dump = os.read(msg, 1024)
        assert len(dump) == 528 and parse_hexdump(dump)[0x1C:0x21] == b"\0\0\0\0i"
        with pytest.raises(BlockingIOError):
            os.read(msg, 1024)  # data_ready cleared by the read
    finally:
        os.close(msg)


def test_unmount_leaves_python_signal_handling_intact(mountpoint: Path) -> None:
    """libfuse resets SIGPIPE to default on teardown; we put Python's handlers back."""
    import signal

    before = signal.getsignal(signal.SIGPIPE)
    MailboxFuse(make_platform(), mountpoint).start().stop()
    assert signal.getsignal(signal.SIGPIPE) == before == signal.SIG_IGN
    assert not os.path.ismount(mountpoint)
