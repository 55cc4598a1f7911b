"""A FUSE tree with the Linux SCMI raw-mode debugfs semantics, served by a `Platform`.

Mount point layout (protocol.md §1.8; file modes as the kernel creates them)::

    instance_name  atomic_threshold_us
    raw/message  raw/message_async  raw/message_poll  raw/message_poll_async   (0600)
    raw/notification  raw/errors   (0400)       raw/reset   (0200)
    transport/{max_msg_size,max_rx_timeout_ms,tx_max_msg,rx_max_msg,type,is_atomic} (0400)

Semantics mirror drivers/firmware/arm_scmi/raw_mode.c:

- write: ``count > max_msg_size + 4`` → ENOSPC; ``count < 4`` → EINVAL; payload above
  max_msg_size → ERANGE; a token still in flight is retried 10 times sleeping
  max_rx_timeout_ms/10, then EBUSY. The write returns once the command is sent; the
  platform answers on a dispatcher thread.
- read: the first read of an open file takes one whole queued reply; the next read
  returns 0 (EOF at the message boundary) and re-arms the file. A blocking read waits
  for the next reply; with O_NONBLOCK it fails with EAGAIN; poll()/select() work.
- a reply that took longer than max_rx_timeout_ms is not queued on ``message`` but on
  ``errors``; each queue holds at most tx_max_msg replies, extra ones are dropped
  ("Buffers exhausted"); any write to ``reset`` flushes all queues.
- ``message_async`` / ``message_poll*`` behave like ``message``: our platform sends no
  delayed responses and completion polling is what an emulator does anyway.

`direct_io` is set on every open file so each read and write reaches us whole.
"""

from __future__ import annotations

import collections
import ctypes
import errno
import logging
import os
import queue
import select
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from memlat.frontends.base import FuseFrontEnd, PlatformGate, as_gate
from memlat.frontends.fusemount import FuseMount, FuseOperations
from memlat.scmi.header import Header
from memlat.scmi.platform import Platform
from memlat.scmi.smt import MAX_PAYLOAD_LINUX

log = logging.getLogger(__name__)

MESSAGE_FILES = ("message", "message_async", "message_poll", "message_poll_async")
RAW_RETRIES = 10  # SCMI_XFER_RAW_MAX_RETRIES


def _fuse_error(code: int) -> OSError:
    import mfusepy

    error: OSError = mfusepy.FuseOSError(code)
    return error


class PollWaiters:
    """FUSE poll handles waiting on one queue, at most one per open file.

    The kernel's poll handlers (raw_mode.c `scmi_test_dbg_raw_common_poll`,
    mailbox-test.c `mbox_test_message_poll`) only `poll_wait()` on the queue and return
    the mask; the wake-up comes later from the producer (`wake_up_interruptible`). The
    FUSE equivalent: `register()` keeps the handle (replacing the file's older one) and
    *never* notifies; `wake()` notifies every kept handle when data arrives. Notifying
    from inside the poll handler makes the kernel re-poll at once, forever, whenever a
    poller's events mask does not match (an events mask of 0 spins a core).
    """

    def __init__(self) -> None:
        self._handles: dict[int, int] = {}  # open file -> fuse_pollhandle pointer

    def register(self, fh: int, ph: Any) -> None:
        """Keep `ph` for open file `fh` (caller holds the queue's lock)."""
        if not ph:
            return
        handle = ph if isinstance(ph, int) else ctypes.cast(ph, ctypes.c_void_p).value
        if not handle:
            return
        old = self._handles.get(fh)
        self._handles[fh] = handle
        if old is not None and old != handle:
            _destroy_poll([old])

    def forget(self, fh: int) -> None:
        """The file was released: drop its handle without notifying."""
        old = self._handles.pop(fh, None)
        if old is not None:
            _destroy_poll([old])

    def take(self) -> list[int]:
        """All kept handles, now owned by the caller (pass them to `notify_poll`)."""
        handles = list(self._handles.values())
        self._handles.clear()
        return handles


class RawQueue:
    """One raw-mode queue (replies, errors or notifications): `depth` buffers.

    raw_mode.c `scmi_raw_queue_init` gives every queue `tx_max_msg` buffers;
    `scmi_raw_message_report` on a full queue drops the new report for the reply queue
    ("Buffers exhausted. Dropping report.") and overwrites the oldest unread one for the
    errors and notification queues ("Re-using oldest"): `circular=True`.
    """

    def __init__(self, depth: int, name: str, *, circular: bool = False):
        self.depth = depth
        self.name = name
        self.circular = circular
        self.items: collections.deque[bytes] = collections.deque()
        self.cond = threading.Condition()
        self.waiters = PollWaiters()
        self.dropped = 0
        self.overwritten = 0

    def put(self, data: bytes) -> None:
        """Queue `data` under the kernel's full-queue rule for this queue."""
        with self.cond:
            if len(self.items) >= self.depth:
                if not self.circular:
                    self.dropped += 1
                    log.warning("RAW[%s] - Buffers exhausted. Dropping report.", self.name)
                    return
                self.items.popleft()
                self.overwritten += 1
                if self.overwritten == 1:  # dev_warn_once
                    log.warning("RAW[%s] - Buffers exhausted. Re-using oldest.", self.name)
            self.items.append(data)
            self.cond.notify_all()
            handles = self.waiters.take()
        notify_poll(handles)

    def get(self, nonblock: bool, cancelled: Callable[[], bool]) -> bytes:
        """The oldest item; waits unless `nonblock` (EAGAIN); EINTR when `cancelled()`."""
        with self.cond:
            while not self.items:
                if nonblock:
                    raise _fuse_error(errno.EAGAIN)
                if cancelled():
                    raise _fuse_error(errno.EINTR)
                self.cond.wait(0.05)
            return self.items.popleft()

    def flush(self) -> None:
        """Drop everything queued (scmi_raw_buffer_queue_flush)."""
        with self.cond:
            self.items.clear()

    def poll(self, fh: int, ph: Any) -> bool:
        """poll_wait + mask: keep `ph` for the next put, say whether data is queued."""
        with self.cond:
            self.waiters.register(fh, ph)
            return bool(self.items)

    def release(self, fh: int) -> None:
        """Forget the poll handle of a closed file."""
        with self.cond:
            self.waiters.forget(fh)

    def wake_all(self) -> None:
        """Wake blocked readers and pollers (shutdown)."""
        with self.cond:
            self.cond.notify_all()
            handles = self.waiters.take()
        notify_poll(handles)


def notify_poll(handles: list[int]) -> None:
    """fuse_notify_poll each handle (outside any poll handler), then free it."""
    if not handles:
        return
    import mfusepy

    lib = mfusepy._libfuse
    for handle in handles:
        lib.fuse_notify_poll(ctypes.c_void_p(handle))
        lib.fuse_pollhandle_destroy(ctypes.c_void_p(handle))


def _destroy_poll(handles: list[int]) -> None:
    import mfusepy

    for handle in handles:
        mfusepy._libfuse.fuse_pollhandle_destroy(ctypes.c_void_p(handle))


@dataclass
class _OpenFile:
    path: str
    rx: bytes | None = None
    pos: int = 0
    tx: bytearray | None = None  # scmi_dbg_raw_data tx.buf (max_msg_size + 4 bytes)
    tx_size: int = 0
    tx_req_size: int = 0
    # The VFS keeps the file position; the kernel's ppos is that position minus where
    # raw_mode.c last reset it to 0 (after a send, at the start of a new reply)
    base: int = 0


@dataclass
class RawConfig:
    """The transport/ values the tree reports and obeys."""

    max_msg_size: int = MAX_PAYLOAD_LINUX
    max_rx_timeout_ms: int = 30
    tx_max_msg: int = 20
    rx_max_msg: int = 20
    type: str = "mailbox"
    is_atomic: bool = False
    instance_name: str = "scmi"
    extra: dict[str, str] = field(default_factory=dict)


class RawModeOperations(FuseOperations):
    """mfusepy operations implementing the raw-mode tree over a `PlatformGate`."""

    use_ns = True

    def __init__(self, gate: PlatformGate, config: RawConfig,
                 on_exchange: Callable[[bytes, bytes | None, str], None] | None = None):
        self.gate = gate
        self.config = config
        self.on_exchange = on_exchange
        # raw_mode.c scmi_raw_queue_init: every queue has tx_max_msg buffers
        self.replies = RawQueue(config.tx_max_msg, "message")
        self.errors = RawQueue(config.tx_max_msg, "errors", circular=True)
        self.notifications = RawQueue(config.tx_max_msg, "notification", circular=True)
        #: replies dropped because they do not fit a raw buffer (scmi_xfer_raw_collect)
        self.uncollectable = 0
        self._files: dict[int, _OpenFile] = {}
        self._next_fh = 1
        self._lock = threading.Lock()
        self._inflight: dict[int, float] = {}  # token -> deadline
        self._work: queue.Queue[tuple[float, bytes] | None] = queue.Queue()
        self._shutdown = False
        self._worker = threading.Thread(target=self._dispatch, name="raw-dispatch",
                                        daemon=True)
        self._worker.start()
        now = time.time()
        self._times = {"st_atime": now, "st_mtime": now, "st_ctime": now}

    # -- tree -------------------------------------------------------------------------
    def _text_files(self) -> dict[str, str]:
        c = self.config
        files = {
            "/instance_name": f"{c.instance_name}\n",
            "/atomic_threshold_us": "0\n",
            "/transport/max_msg_size": f"{c.max_msg_size}\n",
            "/transport/max_rx_timeout_ms": f"{c.max_rx_timeout_ms}\n",
            "/transport/tx_max_msg": f"{c.tx_max_msg}\n",
            "/transport/rx_max_msg": f"{c.rx_max_msg}\n",
            "/transport/type": f"{c.type}\n",
            "/transport/is_atomic": "Y\n" if c.is_atomic else "N\n",
        }
        files.update(c.extra)
        return files

    def _entries(self) -> dict[str, int]:
        """path -> mode bits (without the file type)."""
        entries = {p: 0o400 for p in self._text_files()}
        for name in MESSAGE_FILES:
            entries[f"/raw/{name}"] = 0o600
        entries["/raw/notification"] = 0o400
        entries["/raw/errors"] = 0o400
        entries["/raw/reset"] = 0o200
        return entries

    _DIRS: ClassVar[dict[str, tuple[str, ...]]] = {
        "/": ("instance_name", "atomic_threshold_us", "raw", "transport"),
        "/raw": (*MESSAGE_FILES, "notification", "errors", "reset"),
        "/transport": ("max_msg_size", "max_rx_timeout_ms", "tx_max_msg", "rx_max_msg",
                       "type", "is_atomic"),
    }

    def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
        """Directories 0755, files with the kernel's modes, size 0 like debugfs."""
        if path in self._DIRS:
            return {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2, **self._times}
        mode = self._entries().get(path)
        if mode is None:
            raise _fuse_error(errno.ENOENT)
        return {"st_mode": stat.S_IFREG | mode, "st_nlink": 1, "st_size": 0, **self._times}

    def readdir(self, path: str, fh: Any) -> list[str]:
        """List a directory."""
        if path not in self._DIRS:
            raise _fuse_error(errno.ENOTDIR)
        return [".", "..", *self._DIRS[path]]

    def open(self, path: str, fi: Any) -> int:
        """Per-open state, like the kernel's scmi_dbg_raw_data; direct_io always."""
        if path not in self._entries():
            raise _fuse_error(errno.ENOENT)
        with self._lock:
            fh = self._next_fh
            self._next_fh += 1
            self._files[fh] = _OpenFile(path)
        fi.fh = fh
        fi.direct_io = 1
        return 0

    def release(self, path: str, fi: Any) -> int:
        """Forget the open file and its poll handle."""
        with self._lock:
            self._files.pop(fi.fh, None)
        q = self._queue_of(path)
        if q is not None:
            q.release(fi.fh)
        return 0

    def truncate(self, path: str, length: int, fh: Any = None) -> int:
        """Shell `>` truncates first; debugfs ignores it."""
        return 0

    def _queue_of(self, path: str) -> RawQueue | None:
        name = path.rsplit("/", 1)[-1]
        if path.startswith("/raw/") and name in MESSAGE_FILES:
            return self.replies
        return {"/raw/errors": self.errors, "/raw/notification": self.notifications}.get(path)

    # -- read -------------------------------------------------------------------------
    def read(self, path: str, size: int, offset: int, fi: Any) -> bytes:
        """raw_mode.c common_read: one message per read sequence, then EOF."""
        text = self._text_files().get(path)
        if text is not None:
            return text.encode()[offset : offset + size]
        q = self._queue_of(path)
        state = self._files.get(fi.fh)
        if q is None or state is None:
            raise _fuse_error(errno.EINVAL)
        if state.rx is None:
            state.rx = q.get(bool(fi.flags & os.O_NONBLOCK), self._cancelled)
            state.pos = 0
            state.base = offset  # "Reset any previous filepos change, including writes"
        elif state.pos >= len(state.rx):
            state.rx = None  # EOF once the whole message was read out
            return b""
        chunk = state.rx[state.pos : state.pos + size]
        state.pos += len(chunk)
        return chunk

    def _cancelled(self) -> bool:
        if self._shutdown:
            return True
        import mfusepy

        return bool(mfusepy._libfuse.fuse_interrupted())

    def poll(self, path: str, fi: Any, ph: Any, reventsp: Any) -> int:
        """raw_mode.c scmi_test_dbg_raw_common_poll: register the waiter, return
        EPOLLIN|EPOLLRDNORM when the queue holds a message, else 0. Never notifies."""
        q = self._queue_of(path)
        ready = q is not None and q.poll(fi.fh, ph)
        reventsp[0] = (select.POLLIN | select.POLLRDNORM) if ready else 0
        return 0

    # -- write ------------------------------------------------------------------------
    def write(self, path: str, data: bytes, offset: int, fi: Any) -> int:
        """raw_mode.c common_write plus scmi_xfer_raw_get_init's checks."""
        if path == "/raw/reset":
            for q in (self.replies, self.errors, self.notifications):
                q.flush()
            return len(data)
        if self._queue_of(path) is not self.replies:
            raise _fuse_error(errno.EINVAL)  # no write op on this debugfs file
        count = len(data)
        state = self._files.get(fi.fh)
        if state is None:
            raise _fuse_error(errno.EINVAL)
        tx_len = self.config.max_msg_size + 4
        if state.tx is None:
            state.tx = bytearray(tx_len)
        # common_write: count > tx.len (max_msg_size + 4) - tx_size -> ENOSPC
        if count > tx_len - state.tx_size:
            raise _fuse_error(errno.ENOSPC)
        # The bytes land at the file position (simple_write_to_buffer(..., ppos, ...)) and
        # the buffer is sent from offset 0; common_write resets the position after a
        # send, but common_read leaves it at the end of the reply it returned. A message
        # written after a read on the same open file therefore goes out as stale bytes
        # (seen on a real 6.12 guest). Modelled so agents that reuse the file are caught.
        if not state.tx_size:
            state.tx_req_size = count
        ppos = offset - state.base
        if state.tx_size < state.tx_req_size:
            cnt = max(0, min(count, tx_len - ppos))
            state.tx[ppos:ppos + cnt] = data[:cnt]
            state.tx_size += cnt
            if cnt < count:
                return cnt
        written = count
        data = bytes(state.tx[:state.tx_size])  # what scmi_raw_message_send gets
        state.tx_size = 0
        state.base = offset + count  # "Reset ppos for next message": *ppos = 0
        # scmi_xfer_raw_get_init: len < sizeof(u32) -> EINVAL; tx_size > max -> ERANGE
        if len(data) < 4:
            raise _fuse_error(errno.EINVAL)
        if len(data) - 4 > self.config.max_msg_size:
            raise _fuse_error(errno.ERANGE)
        # unpack_scmi_header + pack_scmi_header: bits 31:28 are not carried
        header = int.from_bytes(data[:4], "little") & 0x0FFF_FFFF
        token = (header >> 18) & 0x3FF
        for attempt in range(RAW_RETRIES):
            with self._lock:
                now = time.monotonic()
                live = {t: d for t, d in self._inflight.items() if d > now}
                if token not in live:
                    # scmi_xfer_raw_get: a pool of tx_max_msg xfers, then -ENOMEM
                    if len(live) >= self.config.tx_max_msg:
                        raise _fuse_error(errno.ENOMEM)
                    live[token] = now + self.config.max_rx_timeout_ms / 1000
                    self._inflight = live
                    break
            if attempt == RAW_RETRIES - 1:
                raise _fuse_error(errno.EBUSY)  # in-flight registration kept failing
            time.sleep(self.config.max_rx_timeout_ms / 1000 / RAW_RETRIES)
        self._work.put((time.monotonic(), header.to_bytes(4, "little") + bytes(data[4:])))
        return written

    # -- platform side ----------------------------------------------------------------
    def _dispatch(self) -> None:
        timeout_s = self.config.max_rx_timeout_ms / 1000
        while (item := self._work.get()) is not None:
            sent_at, command = item
            reply = self.gate.handle_bytes(command)
            late = time.monotonic() - sent_at > timeout_s
            token = Header.from_bytes(command).token
            with self._lock:
                self._inflight.pop(token, None)
            if self.on_exchange is not None:
                self.on_exchange(command, reply, "raw")
            if reply is None or len(reply) < 8:
                continue
            self._report(command, reply, late)

    def _report(self, command: bytes, reply: bytes, late: bool) -> None:
        """scmi_raw_message_report / scmi_raw_error_report of one reply.

        On time: the header is the command's own (the xfer's, re-packed); late: the
        header the platform sent (scmi_xfer_raw_fill). Either way the status word, then
        the return values clipped to max_msg_size (shmem fetch_response). The message
        must fit a raw buffer of max_msg_size + 4 bytes (scmi_xfer_raw_collect), else
        it is dropped ("Cannot collect xfer into buffer").
        """
        size = self.config.max_msg_size
        header = reply[:4] if late else command[:4]
        header = (int.from_bytes(header, "little") & 0x0FFF_FFFF).to_bytes(4, "little")
        message = header + reply[4:8] + reply[8 : 8 + size]
        if len(message) > size + 4:
            self.uncollectable += 1
            log.warning("RAW - Cannot collect xfer into buffer ! (%d > %d bytes)",
                        len(message), size + 4)
            return
        (self.errors if late else self.replies).put(message)

    def destroy(self, path: str) -> None:
        """Unmount: stop the dispatcher and wake every waiter."""
        self.shutdown()

    def shutdown(self) -> None:
        """Stop the dispatcher and release blocked readers."""
        if self._shutdown:
            return
        self._shutdown = True
        self._work.put(None)
        for q in (self.replies, self.errors, self.notifications):
            q.wake_all()


class RawFuse(FuseFrontEnd):
    """Platform side: a raw-mode tree mounted at `mountpoint` (see module docstring)."""

    def __init__(self, platform: Platform | PlatformGate, mountpoint: str | os.PathLike[str],
                 *, config: RawConfig | None = None,
                 on_exchange: Callable[[bytes, bytes | None, str], None] | None = None):
        super().__init__()
        self.gate = as_gate(platform)
        self.mountpoint = os.fspath(mountpoint)
        self.name = f"raw-fuse:{self.mountpoint}"
        self.config = config or RawConfig()
        self.operations = RawModeOperations(self.gate, self.config, on_exchange)
        self._mount = FuseMount(self.operations, self.mountpoint, fsname="memlat-scmi-raw")

