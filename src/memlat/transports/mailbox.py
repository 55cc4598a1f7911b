"""Agent side of the Linux mailbox-test pair: the hex-dump codec of `mailbox-test.c` and
`MailboxTestClient` / `MailboxTestTransport`, which drive a `message` + `signal` pair (a real
mailbox-test debugfs directory or `memlat platform serve --mailbox-fuse`)."""

from __future__ import annotations

import os
import select
from pathlib import Path

from memlat.errors import DecodeError, TransportError
from memlat.scmi.message import Message
from memlat.scmi.smt import SmtArea
from memlat.scmi.transport import Transport

MBOX_MAX_SIG_LEN = 8
MBOX_MAX_MSG_LEN = 128
MBOX_BYTES_PER_LINE = 16
MBOX_HEXDUMP_LINE_LEN = MBOX_BYTES_PER_LINE * 4 + 2
MBOX_HEXDUMP_MAX_LEN = MBOX_HEXDUMP_LINE_LEN * (MBOX_MAX_MSG_LEN // MBOX_BYTES_PER_LINE)


def hexdump(buffer: bytes) -> bytes:
    """mailbox-test's dump of a 128-byte buffer (528 bytes of text)."""
    lines = []
    for start in range(0, MBOX_MAX_MSG_LEN, MBOX_BYTES_PER_LINE):
        row = buffer[start : start + MBOX_BYTES_PER_LINE]
        hexpart = " ".join(f"{b:02x}" for b in row)
        # ascii column = rowsize*2 + rowsize/groupsize + 1 = 49 (lib/hexdump.c)
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in row)
        lines.append(f"{hexpart:<49}{text}\n")
    return "".join(lines).encode("ascii")


def parse_hexdump(text: bytes | str) -> bytes:
    """The 128 bytes of a mailbox-test dump (DecodeError names the bad line)."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    out = bytearray()
    for number, line in enumerate(text.split("\n")):
        if not line.strip():
            continue
        try:
            out += bytes.fromhex(line[:47])
        except ValueError as exc:
            raise DecodeError(f"hex dump line {number} is not hex: {line[:47]!r}",
                              offset=number * MBOX_HEXDUMP_LINE_LEN, field="hexdump") from exc
    return bytes(out)



class MailboxTestClient:
    """Agent-side helper for a mailbox-test directory (ours or a real debugfs one)."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)

    def xfer(self, command: Message, *, signal: bytes | None = b"\x01",
             timeout_s: float = 1.0) -> Message:
        """Write `command` as a 128-byte SMT buffer, wait for and parse the reply."""
        buffer = bytearray(MBOX_MAX_MSG_LEN)
        SmtArea(buffer).write_command(command, interrupt=True)
        fd = os.open(self.directory / "message", os.O_RDWR | os.O_NONBLOCK)
        try:
            if signal is not None:
                sig = os.open(self.directory / "signal", os.O_WRONLY)
                try:
                    os.write(sig, signal)
                finally:
                    os.close(sig)
            os.write(fd, bytes(buffer))
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            if not poller.poll(int(timeout_s * 1000)):
                raise TransportError(f"mailbox-test {self.directory}: no reply within "
                                     f"{timeout_s * 1000:.0f} ms")
            dump = os.read(fd, MBOX_HEXDUMP_MAX_LEN)
        finally:
            os.close(fd)
        reply_area = bytearray(parse_hexdump(dump))
        try:
            return SmtArea(reply_area).read_response()
        except DecodeError as exc:
            raise TransportError(f"mailbox-test {self.directory}: bad reply: {exc}") from exc


class MailboxTestTransport(Transport):
    """An agent `Transport` over a mailbox-test directory (one command at a time)."""

    def __init__(self, directory: str | os.PathLike[str], *, signal: bytes | None = b"\x01"):
        self.directory = Path(directory)
        self.name = f"mailbox-test:{self.directory}"
        self.max_msg_size = MBOX_MAX_MSG_LEN - 0x1C
        self.signal = signal
        try:
            self._fd = os.open(self.directory / "message", os.O_RDWR | os.O_NONBLOCK)
        except OSError as exc:
            raise TransportError(f"{self.name}: cannot open message ({exc.strerror})") from exc
        self._poller = select.poll()
        self._poller.register(self._fd, select.POLLIN)

    def send(self, message: bytes) -> None:
        """Optional signal write, then the 128-byte SMT buffer to `message` (rings)."""
        buffer = bytearray(MBOX_MAX_MSG_LEN)
        SmtArea(buffer).write_command(Message.from_bytes(message), interrupt=True)
        try:
            if self.signal is not None:
                sig = os.open(self.directory / "signal", os.O_WRONLY)
                try:
                    os.write(sig, self.signal)
                finally:
                    os.close(sig)
            os.write(self._fd, bytes(buffer))
        except OSError as exc:
            raise TransportError(f"{self.name}: write refused ({exc.strerror})") from exc

    def receive(self, timeout_s: float) -> bytes | None:
        """Poll `message`, read the dump and return the SMT reply as a message."""
        if not self._poller.poll(max(0, int(timeout_s * 1000 + 0.999))):
            return None
        try:
            # the driver's read continues from the file position: rewind for each reply
            os.lseek(self._fd, 0, os.SEEK_SET)
            dump = os.read(self._fd, MBOX_HEXDUMP_MAX_LEN)
        except BlockingIOError:
            return None
        try:
            return SmtArea(bytearray(parse_hexdump(dump))).read_response().to_bytes()
        except DecodeError as exc:
            raise TransportError(f"{self.name}: bad reply: {exc}") from exc

    def close(self) -> None:
        """Close `message`."""
        os.close(self._fd)
