"""A FUSE pair `message` + `signal` with Linux mailbox-test semantics, served by a Platform.

Mirrors drivers/mailbox/mailbox-test.c, with the shared memory (`tx_mmio`, and `rx_mmio`
= `tx_mmio` when the node has one reg) holding an SMT area (protocol.md §1.5) that our
emulated platform answers, i.e. the remote end of the mailbox (§1.6):

- ``signal`` (0200): a write of more than 8 bytes (MBOX_MAX_SIG_LEN) → EINVAL; otherwise
  the bytes are kept as the doorbell value for the next ``message`` write, which then
  frees them. Writing ``signal`` alone rings nothing (mailbox-test only sends on a
  ``message`` write); the value itself is meaningless to SCMI (§1.6).
- ``message`` (0600) write: more than 128 bytes (MBOX_MAX_MSG_LEN) → EINVAL; the bytes,
  zero-padded to 128, are copied into the shared memory and the doorbell is rung. The
  platform serves the SMT area; if the area's flags ask for a completion interrupt
  (§1.5 flags bit0) the reply area is copied into the receive buffer and readers wake.
  With flags 0 no interrupt comes, so a read waits, as on hardware.
- ``message`` read: blocks until a reply is ready (O_NONBLOCK → EAGAIN; poll() works),
  then returns the kernel's hex dump of the 128-byte receive buffer: 8 lines of
  `hex_dump_to_buffer(rowsize 16, groupsize 1, ascii)`, each 65 characters + newline,
  read from the file offset; the buffer is zeroed and "data ready" cleared at once, so a
  second read (like `cat`'s EOF probe) waits for the next reply, exactly as the driver.

`MailboxTestClient` is the agent-side helper: it builds the SMT buffer, writes it, and
parses the hex dump back into an SMT reply.
"""

from __future__ import annotations

import errno
import os
import select
import stat
import threading
import time
from collections.abc import Callable
from typing import Any

from memlat.errors import DecodeError
from memlat.frontends.base import FuseFrontEnd, PlatformGate, as_gate
from memlat.frontends.fuse_raw import PollWaiters, _fuse_error, notify_poll
from memlat.frontends.fusemount import FuseMount, FuseOperations
from memlat.scmi.message import Message
from memlat.scmi.platform import Platform
from memlat.scmi.smt import SmtArea
from memlat.transports.mailbox import (
    MBOX_MAX_MSG_LEN,
    MBOX_MAX_SIG_LEN,
    hexdump,
)

#: what a read of `message` returns: the stock driver's hex dump, or the raw buffer
READ_MODES = ("hexdump", "raw")


class MailboxTestOperations(FuseOperations):
    """mfusepy operations for the `message`/`signal` pair."""

    use_ns = True

    def __init__(self, gate: PlatformGate,
                 on_exchange: Callable[[bytes, bytes | None, str], None] | None = None,
                 *, read_mode: str = "hexdump"):
        if read_mode not in READ_MODES:
            raise ValueError(f"mailbox read mode must be one of {', '.join(READ_MODES)}, "
                             f"not {read_mode!r}")
        self.gate = gate
        self.on_exchange = on_exchange
        self.read_mode = read_mode
        self.shmem = bytearray(MBOX_MAX_MSG_LEN)  # tx_mmio == rx_mmio
        self.rx_buffer = bytearray(MBOX_MAX_MSG_LEN)
        self.signal: bytes | None = None
        self.data_ready = False
        self.rings = 0
        self._cond = threading.Condition()
        self._mutex = threading.Lock()  # tdev->mutex around a message write
        self._waiters = PollWaiters()
        self._shutdown = False
        # The driver's write does not move the file position, but FUSE advances it by
        # the bytes written; reads subtract what each open file wrote to compensate.
        self._written: dict[int, int] = {}
        self._next_fh = 0
        now = time.time()
        self._times = {"st_atime": now, "st_mtime": now, "st_ctime": now}

    _MODES = {"/message": 0o600, "/signal": 0o200}  # noqa: RUF012 - read-only table

    def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
        """The root directory and the two debugfs files."""
        if path == "/":
            return {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2, **self._times}
        if path not in self._MODES:
            raise _fuse_error(errno.ENOENT)
        return {"st_mode": stat.S_IFREG | self._MODES[path], "st_nlink": 1, "st_size": 0,
                **self._times}

    def readdir(self, path: str, fh: Any) -> list[str]:
        """`message` and `signal`."""
        return [".", "..", "message", "signal"]

    def open(self, path: str, fi: Any) -> int:
        """simple_open; direct_io so every read and write reaches us."""
        if path not in self._MODES:
            raise _fuse_error(errno.ENOENT)
        with self._mutex:
            self._next_fh += 1
            fi.fh = self._next_fh
            self._written[fi.fh] = 0
        fi.direct_io = 1
        return 0

    def release(self, path: str, fi: Any) -> int:
        """Forget the open file and its poll handle."""
        self._written.pop(fi.fh, None)
        with self._cond:
            self._waiters.forget(fi.fh)
        return 0

    def truncate(self, path: str, length: int, fh: Any = None) -> int:
        """Shell `>` truncates first; debugfs ignores it."""
        return 0

    def write(self, path: str, data: bytes, offset: int, fi: Any) -> int:
        """mbox_test_signal_write / mbox_test_message_write."""
        if path == "/signal":
            if len(data) > MBOX_MAX_SIG_LEN:
                raise _fuse_error(errno.EINVAL)
            # kzalloc once, then copy_from_user over it: a shorter second write keeps
            # the tail of the first until a message write frees the buffer
            signal = bytearray(self.signal or bytes(MBOX_MAX_SIG_LEN))
            signal[: len(data)] = data
            self.signal = bytes(signal)
            return len(data)
        if len(data) > MBOX_MAX_MSG_LEN:
            raise _fuse_error(errno.EINVAL)
        if fi.fh in self._written:
            self._written[fi.fh] += len(data)
        with self._mutex:
            message = bytes(data).ljust(MBOX_MAX_MSG_LEN, b"\0")
            self.shmem[:] = message  # tx_prepare: memcpy_toio(tx_mmio, message, 128)
            self.signal = None  # freed after every message write
            self._ring()
        return len(data)

    def _ring(self) -> None:
        """The remote end: serve the SMT area, then raise rx if the flags ask for it."""
        self.rings += 1
        area = SmtArea(self.shmem)
        command = bytes(self.shmem)
        irq = self.gate.serve_area(area)
        if self.on_exchange is not None:
            try:
                reply = area.read_response().to_bytes()
            except DecodeError:
                reply = None
            self.on_exchange(Message(area.header, command[0x1C : 0x1C + max(0, int.from_bytes(
                command[0x14:0x18], "little") - 4)]).to_bytes(), reply, "mbox")
        if irq:
            with self._cond:
                self.rx_buffer[:] = self.shmem  # rx_callback: memcpy_fromio(rx_mmio)
                self.data_ready = True
                self._cond.notify_all()
                handles = self._waiters.take()
            notify_poll(handles)

    def read(self, path: str, size: int, offset: int, fi: Any) -> bytes:
        """mbox_test_message_read: wait for data, dump it, clear it, read from offset.

        With read_mode "raw" the 128-byte receive buffer itself is read instead of its
        hex dump (the patched driver ARM's scmi-tests Linux agent expects)."""
        if path != "/message":
            raise _fuse_error(errno.EINVAL)
        with self._cond:
            while not self.data_ready:
                if fi.flags & os.O_NONBLOCK:
                    raise _fuse_error(errno.EAGAIN)
                if self._cancelled():
                    raise _fuse_error(errno.EINTR)
                self._cond.wait(0.05)
            dump = (bytes(self.rx_buffer) if self.read_mode == "raw"
                    else hexdump(bytes(self.rx_buffer)))
            self.rx_buffer[:] = bytes(MBOX_MAX_MSG_LEN)
            self.data_ready = False
        start = max(0, offset - self._written.get(fi.fh, 0))
        return dump[start : start + size]

    def _cancelled(self) -> bool:
        if self._shutdown:
            return True
        import mfusepy

        return bool(mfusepy._libfuse.fuse_interrupted())

    def poll(self, path: str, fi: Any, ph: Any, reventsp: Any) -> int:
        """mbox_test_message_poll: poll_wait on the wait queue, then EPOLLIN|EPOLLRDNORM
        while data is ready, else 0. Never notifies (see PollWaiters)."""
        with self._cond:
            self._waiters.register(fi.fh, ph)
            ready = self.data_ready
        reventsp[0] = (select.POLLIN | select.POLLRDNORM) if ready else 0
        return 0

    def destroy(self, path: str) -> None:
        """Unmount: wake blocked readers."""
        self.shutdown()

    def shutdown(self) -> None:
        """Release blocked readers and pollers."""
        self._shutdown = True
        with self._cond:
            self._cond.notify_all()
            handles = self._waiters.take()
        notify_poll(handles)


class MailboxFuse(FuseFrontEnd):
    """Platform side: the mailbox-test pair mounted at `mountpoint`."""

    def __init__(self, platform: Platform | PlatformGate, mountpoint: str | os.PathLike[str],
                 *, on_exchange: Callable[[bytes, bytes | None, str], None] | None = None,
                 read_mode: str = "hexdump"):
        super().__init__()
        self.gate = as_gate(platform)
        self.mountpoint = os.fspath(mountpoint)
        self.name = f"mailbox-fuse:{self.mountpoint}" + (
            " (raw read)" if read_mode == "raw" else "")
        self.operations = MailboxTestOperations(self.gate, on_exchange, read_mode=read_mode)
        self._mount = FuseMount(self.operations, self.mountpoint, fsname="memlat-mbox-test")
