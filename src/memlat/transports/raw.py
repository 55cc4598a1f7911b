"""Agent transport over the Linux SCMI raw-mode debugfs tree (protocol.md §1.8).

`RawTransport("/sys/kernel/debug/scmi/0")` writes each command with one `write()` to
``raw/message_poll`` when the kernel has it (6.16+; completion by polling works even if
firmware forgets the doorbell, §1.8 field note) and ``raw/message`` otherwise, and reads
each reply with one `read()`. The file is opened O_NONBLOCK and waited on with poll(),
so a reply that never comes costs exactly the timeout, never a hung reader.

Kernel read semantics (raw_mode.c `scmi_dbg_raw_mode_common_read`): the first read of
an open file dequeues one whole reply; the read after it returns 0 (EOF at the message
boundary) and re-arms the file. So a 0-byte read here just means "previous message
done" and is skipped. Late replies never reach ``raw/message``; the kernel files them in
``raw/errors``, which `read_errors()` drains (and `receive` hands them to the agent,
which records them as late). The token in the header is the kernel's sequence number:
the agent core already keeps tokens distinct (protocol.md §1.8).
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import time
from pathlib import Path

from memlat.errors import TransportError
from memlat.scmi.smt import MAX_PAYLOAD_LINUX
from memlat.scmi.transport import Transport

_ERRNO_MEANING = {
    errno.EINVAL: "message shorter than the 4-byte header",
    errno.ERANGE: "payload larger than transport/max_msg_size",
    errno.ENOSPC: "write larger than max_msg_size + 4",
    errno.ENODEV: "no channel for this protocol",
    errno.ETIMEDOUT: "the token is still in flight",
    errno.EBUSY: "no free raw transfer",
}


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip(), 0)
    except (OSError, ValueError):
        return None


class RawTransport(Transport):
    """Agent side of a raw-mode directory (real debugfs or a `RawFuse` tree)."""

    def __init__(self, directory: str | os.PathLike[str], *, prefer_poll: bool = True,
                 message_file: str | None = None):
        self.directory = Path(directory)
        self.name = f"raw:{self.directory}"
        raw = self.directory / "raw"
        try:
            os.stat(self.directory)
            has_raw = raw.is_dir()
        except OSError as exc:
            if exc.errno == errno.ENOTCONN:
                raise TransportError(
                    f"{self.name}: the FUSE mount at {self.directory} is dead (errno 107 "
                    "ENOTCONN, transport endpoint is not connected): the server that "
                    "served it was killed. Start `memlat platform serve --raw-fuse "
                    f"{self.directory}` again (it recovers the mount) or unmount it") from exc
            raise TransportError(f"{self.name}: cannot access {self.directory} "
                                 f"({exc.strerror})") from exc
        if not has_raw:
            raise TransportError(
                f"{self.name}: no raw/ directory (kernel needs "
                "CONFIG_ARM_SCMI_RAW_MODE_SUPPORT and debugfs mounted)"
            )
        if message_file is None:
            poll_file = raw / "message_poll"
            message_file = "message_poll" if prefer_poll and poll_file.exists() else "message"
        self.message_path = raw / message_file
        transport = self.directory / "transport"
        self.max_msg_size = _read_int(transport / "max_msg_size") or MAX_PAYLOAD_LINUX
        #: the kernel's own reply timeout; a reply later than this lands in raw/errors
        self.max_rx_timeout_ms = _read_int(transport / "max_rx_timeout_ms") or 30
        #: agent timeout that lets the kernel time out first (then nothing is queued)
        self.suggested_timeout_s = self.max_rx_timeout_ms / 1000 + 0.020
        # One open file per exchange: up to Linux 6.12 raw_mode.c's common_write does not
        # reset the file position after a send and common_read leaves it at the end of
        # the reply, so a second message written to the same open file is sent as the
        # stale bytes of the first (seen on a real 6.12 guest, docs/vm.md). The file is
        # opened here once to check it, then anew by every send().
        self._fd = self._open_message()
        self._errors_fd: int | None = None
        errors_path = raw / "errors"
        if errors_path.exists():
            with contextlib.suppress(OSError):
                self._errors_fd = os.open(errors_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self._bufsize = max(4096, self.max_msg_size + 8)
        self._poller = select.poll()
        self._poller.register(self._fd, select.POLLIN)
        self._fresh = True  # the open file has sent nothing yet
        self._late: list[bytes] = []
        self._timeouts = 0
        self._closed = False

    def _open_message(self) -> int:
        try:
            return os.open(self.message_path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise TransportError(f"{self.name}: cannot open {self.message_path} "
                                 f"({exc.strerror})") from exc

    def send(self, message: bytes) -> None:
        """One write of the whole message, as the kernel requires, on a freshly opened
        `message` file (see __init__)."""
        if self._closed:
            raise TransportError(f"{self.name}: transport is closed")
        if not self._fresh:
            fd = self._open_message()
            self._poller.unregister(self._fd)
            os.close(self._fd)
            self._fd = fd
            self._poller.register(fd, select.POLLIN)
        self._fresh = False
        try:
            written = os.write(self._fd, message)
        except OSError as exc:
            meaning = _ERRNO_MEANING.get(exc.errno or 0, exc.strerror)
            raise TransportError(
                f"{self.name}: write of {len(message)} bytes to {self.message_path.name} "
                f"refused: {errno.errorcode.get(exc.errno or 0, exc.errno)} ({meaning})"
            ) from exc
        if written != len(message):
            raise TransportError(f"{self.name}: short write {written}/{len(message)}")

    def _read_one(self, fd: int) -> bytes | None:
        """One message from `fd`, skipping the EOF that closes the previous one."""
        for _ in range(2):
            try:
                data = os.read(fd, self._bufsize)
            except BlockingIOError:
                return None
            except OSError as exc:
                raise TransportError(f"{self.name}: read failed ({exc.strerror})") from exc
            if data:
                return data
        return None

    def read_errors(self) -> list[bytes]:
        """Drain raw/errors: late (timed-out) or unexpected replies, oldest first."""
        out: list[bytes] = []
        if self._errors_fd is None:
            return out
        while (data := self._read_one(self._errors_fd)) is not None:
            out.append(data)
        return out

    def receive(self, timeout_s: float) -> bytes | None:
        """The next reply, a late reply found in raw/errors, or None after `timeout_s`."""
        if not self._late and self._timeouts:
            # raw/errors only fills after a timeout; skip the syscall until one happened
            self._late.extend(self.read_errors())
        if self._late:
            return self._late.pop(0)
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            remaining = deadline - time.monotonic()
            ready = self._poller.poll(max(0, int(remaining * 1000 + 0.999)))
            if ready:
                data = self._read_one(self._fd)
                if data is not None:
                    return data
                # readable but empty (e.g. a poll() that is always ready): back off briefly
                time.sleep(min(200e-6, max(0.0, deadline - time.monotonic())))
            if time.monotonic() >= deadline:
                self._timeouts += 1
                return None

    def reset(self) -> None:
        """Write raw/reset: the kernel flushes every queued unread message."""
        try:
            fd = os.open(self.directory / "raw" / "reset", os.O_WRONLY)
        except OSError as exc:
            raise TransportError(f"{self.name}: cannot open raw/reset ({exc.strerror})") from exc
        try:
            os.write(fd, b"1")
        finally:
            os.close(fd)

    def close(self) -> None:
        """Close the open raw files."""
        if self._closed:
            return
        self._closed = True
        for fd in (self._fd, self._errors_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
