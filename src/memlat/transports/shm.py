"""Shared-memory SMT channel between processes (protocol.md §1.5, §1.6).

The channel is 0x400 bytes of memory mapped by both sides: the A2P area at 0x000 and
the P2A area at 0x200 (0x200 bytes each, like `cpu_scp_lpri0/1` on X1E80100; memlat
sends nothing P2A, so that area stays FREE with flags 0, §1.6). The layout inside an area
is exactly §1.5, handled by `SmtArea`. The memory is an anonymous memfd the platform
creates and seals against shrinking and growing (F_SEAL_SHRINK | F_SEAL_GROW |
F_SEAL_SEAL), handed to the agent over the control socket: there is no file anyone could
truncate, so neither side can ever fault with SIGBUS, and nothing is left on disk.
`PATH` names the channel; its control socket is `PATH.ctl` (docs/transports.md).

Doorbells stand in for the CPUCP mailbox (§1.6). The control socket `PATH.ctl` (0600)
hands the agent the channel memory and its doorbell file descriptors (SCM_RIGHTS) and
tells each side when the other one is gone, so a dead platform is an error, not a hang.
Kinds:

- ``eventfd`` (default): one eventfd per direction; the agent writes 1 to ring, the
  platform writes 1 to raise the completion "interrupt". As fast as a pipe in
  `memlat bench`, one descriptor per direction, and a counter that cannot fill up.
- ``pipe``: one pipe per direction, one byte per ring.
- ``poll``: no doorbell at all; the agent bumps a counter in the area's
  implementation-defined reserved word (offset 0x08, §1.5) and the platform spins on it;
  completion is always by polling the channel status. Most round trips per second, but
  it keeps a core busy on each side, so it is opt-in (docs/transports.md has figures).

Completion follows the channel flags (§1.5): with INTR_ENABLED the platform rings the
P2A doorbell after marking the channel FREE; with flags 0 the agent polls for FREE and
its token. An interrupt that arrives while the channel is not FREE is ignored, as Linux
does ("spurious A2P IRQ").
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import mmap
import os
import select
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from memlat.errors import DecodeError, TransportError
from memlat.scmi.message import Message
from memlat.scmi.smt import (
    DEFAULT_AREA_SIZE,
    MAX_PAYLOAD_LINUX,
    OFF_RESERVED2,
    ChannelFlaggedError,
    ChannelStatus,
    SmtArea,
)
from memlat.scmi.transport import Transport

_U32 = struct.Struct("<I")
A2P_OFFSET = 0x000
P2A_OFFSET = DEFAULT_AREA_SIZE
FILE_SIZE = 2 * DEFAULT_AREA_SIZE
DOORBELLS = ("eventfd", "pipe", "poll")
DEFAULT_DOORBELL = "eventfd"  # best non-spinning doorbell; figures in docs/transports.md
_SPIN_S = 200e-6  # pure spinning before a poll-mode waiter starts to sleep


def control_path(path: str | os.PathLike[str]) -> str:
    """The control socket of channel `path` (where the agent gets the channel memory)."""
    return f"{os.fspath(path)}.ctl"


class _Doorbell:
    """One direction's doorbell: ring() on one side, clear() on the other.

    `ring` and `take` are bound once to the kind's system call (they run on every
    round trip); `take` is clear() without its guard: it raises BlockingIOError when
    nothing rang."""

    def __init__(self, kind: str, read_fd: int, write_fd: int):
        self.kind = kind
        self.read_fd = read_fd
        self.write_fd = write_fd
        if kind == "eventfd":
            self.ring: Callable[[], object] = functools.partial(os.eventfd_write, write_fd, 1)
            self.take: Callable[[], object] = functools.partial(os.eventfd_read, read_fd)
        else:
            self.ring = functools.partial(os.write, write_fd, b"\x01")
            self.take = functools.partial(os.read, read_fd, 4096)

    @classmethod
    def create(cls, kind: str, *, blocking_read: bool = False) -> _Doorbell:
        """A new doorbell. `blocking_read`: `take` waits for a ring (for a thread that
        does nothing else); the writer's side never blocks either way (an eventfd
        counter cannot fill up in practice; a pipe's write end keeps O_NONBLOCK, which
        belongs to that end's own open file)."""
        if kind == "eventfd":
            flags = os.EFD_CLOEXEC | (0 if blocking_read else os.EFD_NONBLOCK)
            fd = os.eventfd(0, flags)
            return cls(kind, fd, fd)
        if kind == "pipe":
            r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            if blocking_read:
                os.set_blocking(r, True)
            return cls(kind, r, w)
        raise ValueError(f"doorbell kind {kind!r} has no file descriptors")

    def clear(self) -> None:
        try:  # noqa: SIM105 - not contextlib.suppress: this runs on every round trip
            self.take()
        except BlockingIOError:
            pass

    def close(self) -> None:
        for fd in {self.read_fd, self.write_fd}:
            with contextlib.suppress(OSError):
                os.close(fd)


#: seals on the channel memory: nobody, not even its creator, can resize it (so no
#: mapping can ever lose its pages and fault with SIGBUS), and the seals are final
SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL


def create_channel() -> tuple[int, mmap.mmap]:
    """Platform side: the channel memory, an anonymous sealed memfd of FILE_SIZE bytes
    (memfd_create(2) with MFD_ALLOW_SEALING, then F_ADD_SEALS), and its mapping."""
    fd = os.memfd_create("memlat-scmi-shmem", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(fd, FILE_SIZE)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
        return fd, mmap.mmap(fd, FILE_SIZE)
    except BaseException:
        os.close(fd)
        raise


def map_channel(fd: int, where: str) -> mmap.mmap:
    """Agent side: map the channel memory received from the platform, after checking it
    is sealed against shrinking and growing and has the channel's size (else
    TransportError naming what is missing)."""
    try:
        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
    except OSError as exc:
        raise TransportError(f"{where}: the channel memory is not a sealable memfd "
                             f"({exc.strerror or exc})") from exc
    missing = [name for name, bit in (("F_SEAL_SHRINK", fcntl.F_SEAL_SHRINK),
                                      ("F_SEAL_GROW", fcntl.F_SEAL_GROW)) if not seals & bit]
    if missing:
        raise TransportError(f"{where}: the channel memory lacks {' and '.join(missing)}; "
                             "refusing to map memory that could be truncated under us")
    size = os.fstat(fd).st_size
    if size != FILE_SIZE:
        raise TransportError(f"{where}: channel memory of {size} bytes, expected {FILE_SIZE}")
    return mmap.mmap(fd, FILE_SIZE)


# -- agent side -----------------------------------------------------------------------
class ShmTransport(Transport):
    """Agent side of the shared-memory channel served by `ShmFrontEnd` at `path`.

    `interrupt` asks for completion interrupts (flags bit0, §1.5); it is ignored with a
    ``poll`` doorbell. `busy_timeout_s` bounds the wait for a FREE channel before a send
    (Linux: 2 × rx timeout, "Timeout waiting for a free TX channel").
    """

    def __init__(self, path: str | os.PathLike[str], *, interrupt: bool = True,
                 connect_timeout_s: float = 2.0, busy_timeout_s: float = 0.060):
        self.path = os.fspath(path)
        self.name = f"shm:{self.path}"
        self._largest = 4 + MAX_PAYLOAD_LINUX  # header plus the largest payload
        #: agent timeout hint: the peer is a Python process on a possibly busy machine,
        #: so allow more than Linux's 30 ms (memlat probe uses this)
        self.suggested_timeout_s = 0.25
        self.busy_timeout_s = busy_timeout_s
        self._ctl = self._connect(connect_timeout_s)
        try:
            hello, fds = self._handshake(connect_timeout_s)
            self._fds = fds
            self.doorbell_kind: str = hello["doorbell"]
            self.interrupt = interrupt and self.doorbell_kind != "poll"
            self._a2p = self._p2a = None
            want = 1 if self.doorbell_kind == "poll" else 3
            if len(fds) != want:
                raise TransportError(f"shm:{self.path}: handshake carried {len(fds)} file "
                                     f"descriptors, expected {want}")
            # fds: channel memory, [A2P doorbell write end, P2A doorbell read end]
            self._fd = fds[0]
            if self.doorbell_kind != "poll":
                self._a2p = _Doorbell(self.doorbell_kind, fds[1], fds[1])
                self._p2a = _Doorbell(self.doorbell_kind, fds[2], fds[2])
            self._mm = map_channel(self._fd, self.name)
        except BaseException:
            self._ctl.close()
            for fd in getattr(self, "_fds", []):
                with contextlib.suppress(OSError):
                    os.close(fd)
            raise
        self.area = SmtArea(memoryview(self._mm)[A2P_OFFSET:A2P_OFFSET + DEFAULT_AREA_SIZE])
        self._post, self._take_response = self.area.post_command, self.area.take_response
        #: token of the command sent and not yet answered
        self._pending: int | None = None
        self._ring: Callable[[], object] = (self._bump_sequence if self._a2p is None
                                            else self._a2p.ring)
        self._stray: list[bytes] = []
        self._poller = select.poll()
        self._ctl_fd = self._ctl.fileno()
        self._poller.register(self._ctl_fd, select.POLLIN)
        self._irq_poll = self._poller.poll
        self._irq_clear: Callable[[], None] = lambda: None
        self._only_irq: list[tuple[int, int]] = []  # poll()'s answer when only the IRQ came
        if self._p2a is not None:
            self._poller.register(self._p2a.read_fd, select.POLLIN)
            self._irq_clear = self._p2a.clear
            self._only_irq = [(self._p2a.read_fd, select.POLLIN)]
        self._closed = False

    @property
    def max_msg_size(self) -> int:
        """Largest payload in bytes (104, Linux SCMI_SHMEM_MAX_PAYLOAD_SIZE)."""
        return self._largest - 4

    @max_msg_size.setter
    def max_msg_size(self, value: int) -> None:
        self._largest = 4 + value

    def _connect(self, timeout_s: float) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout_s)
        try:
            sock.connect(control_path(self.path))
        except OSError as exc:
            sock.close()
            raise TransportError(
                f"shm:{self.path}: cannot reach the platform's control socket "
                f"{control_path(self.path)} ({exc.strerror or exc}); is `memlat platform "
                f"serve --shm {self.path}` running?"
            ) from exc
        return sock

    def _handshake(self, timeout_s: float) -> tuple[dict[str, Any], list[int]]:
        try:
            data, fds, _flags, _addr = socket.recv_fds(self._ctl, 4096, 4)
        except (OSError, TimeoutError) as exc:
            raise TransportError(f"shm:{self.path}: no handshake from the platform "
                                 f"({exc})") from exc
        try:
            hello = json.loads(data.decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TransportError(f"shm:{self.path}: malformed handshake {data!r}") from exc
        if "error" in hello:
            raise TransportError(f"shm:{self.path}: platform refused: {hello['error']}")
        if hello.get("doorbell") not in DOORBELLS:
            raise TransportError(f"shm:{self.path}: unknown doorbell {hello.get('doorbell')!r}")
        self._ctl.setblocking(False)
        return hello, fds

    # -- helpers ----------------------------------------------------------------------
    def _check_peer(self) -> None:
        """Raise if the platform closed the control socket (it exited or was killed)."""
        try:
            data = self._ctl.recv(64)
        except BlockingIOError:
            return
        except OSError as exc:
            data = b""
            reason = str(exc)
        else:
            reason = "control socket closed"
        if not data:
            what = (f" while token {self._pending} was pending"
                    if self._pending is not None else "")
            raise TransportError(
                f"shm:{self.path}: platform is gone ({reason}; process exited or was "
                f"killed){what}"
            )

    def _take_reply(self) -> bytes:
        reply = self._take_reply_if_free()
        if reply is None:  # callers saw FREE; keep the contract if the status changed
            raise TransportError(f"shm:{self.path}: the platform took the channel back")
        return reply

    def _take_reply_if_free(self) -> bytes | None:
        """The reply once the channel is FREE (clearing the pending token), else None."""
        try:
            reply = self.area.take_response()
        except DecodeError as exc:
            raise self._bad_reply(exc) from exc
        if reply is not None:
            self._pending = None
        return reply

    def _bad_reply(self, exc: DecodeError) -> TransportError:
        """The error for a reply that cannot be taken (the pending token is dropped)."""
        pending, self._pending = self._pending, None
        if isinstance(exc, ChannelFlaggedError):
            return TransportError(
                f"shm:{self.path}: platform flagged CHANNEL_ERROR for token "
                f"{'?' if pending is None else pending} (it could not parse the command)")
        return TransportError(f"shm:{self.path}: corrupted reply: {exc}")

    def _wait_free(self) -> None:
        """Wait for the platform to release the channel; keep a late reply if one lands."""
        if self.area.is_free:
            if self._pending is not None:
                self._stray.append(self._take_reply())
            return
        deadline = time.monotonic() + self.busy_timeout_s
        while not self.area.is_free:
            self._check_peer()
            if time.monotonic() >= deadline:
                raise TransportError(
                    f"shm:{self.path}: timeout waiting for a free TX channel "
                    f"({self.busy_timeout_s * 1000:.0f} ms); the platform still owns it"
                )
            time.sleep(50e-6)
        if self._pending is not None:
            with contextlib.suppress(TransportError):
                self._stray.append(self._take_reply())

    # -- Transport --------------------------------------------------------------------
    def send(self, message: bytes) -> None:
        """Write the command into the A2P area (shmem_tx_prepare) and ring the doorbell."""
        if (self._closed or not 4 <= len(message) <= self._largest
                or self._pending is not None
                or not self._post(message, interrupt=self.interrupt)):
            self._before_send(message)
            self.area.write_command_bytes(message, interrupt=self.interrupt)
        self._pending = (_U32.unpack_from(message)[0] >> 18) & 0x3FF  # token, bits 27:18
        self._ring()

    def _before_send(self, message: bytes) -> None:
        """Refuse what cannot be sent; wait for the channel to be FREE (keeping a late
        reply that lands meanwhile)."""
        if self._closed:
            raise TransportError(f"shm:{self.path}: transport is closed")
        if len(message) < 4:
            Message.from_bytes(message)  # raises DecodeError naming the header
        if len(message) - 4 > self.max_msg_size:
            raise TransportError(f"shm:{self.path}: payload of {len(message) - 4} bytes "
                                 f"exceeds max_msg_size {self.max_msg_size}")
        self._wait_free()

    def _bump_sequence(self) -> None:
        """The ``poll`` doorbell: count the command in the area's reserved word 0x08."""
        seq = struct.unpack_from("<I", self._mm, A2P_OFFSET + OFF_RESERVED2)[0]
        struct.pack_into("<I", self._mm, A2P_OFFSET + OFF_RESERVED2, (seq + 1) & 0xFFFF_FFFF)

    def _completed(self) -> bool:
        """Polling completion: FREE or ERROR, and our token in the header (§1.5)."""
        status = self.area.channel_status
        return bool(status & (ChannelStatus.FREE | ChannelStatus.ERROR)) and (
            self._pending is not None and self.area.header.token == self._pending
        )

    def receive(self, timeout_s: float) -> bytes | None:
        """The reply (or a late reply kept from earlier), or None after `timeout_s`."""
        if self._pending is not None and self.interrupt and not self._stray:
            # the usual case, kept tight (each lookup costs on every round trip): one
            # poll() that brings our completion IRQ and nothing else
            deadline = time.monotonic() + timeout_s
            if self._irq_poll(max(0, int(timeout_s * 1000 + 0.999))) == self._only_irq:
                self._irq_clear()
                try:
                    reply = self._take_response()
                except DecodeError as exc:
                    raise self._bad_reply(exc) from exc
                if reply is not None:
                    self._pending = None
                    return reply
            return self._receive(deadline)
        return self._receive(time.monotonic() + max(0.0, timeout_s))

    def _receive(self, deadline: float) -> bytes | None:
        """`receive` in general: kept late replies, IRQ or polled completion, the
        peer's death on the control socket; None at `deadline` (time.monotonic)."""
        if self._stray:
            return self._stray.pop(0)
        if self._pending is None:
            self._check_peer()
            return None
        if self.interrupt:
            assert self._p2a is not None  # interrupt needs a doorbell (see __init__)
            while True:
                remaining = deadline - time.monotonic()
                irq = False
                for fd, _ev in self._irq_poll(max(0, int(remaining * 1000 + 0.999))):
                    if fd == self._ctl_fd:
                        self._check_peer()
                    else:
                        irq = True
                if irq:
                    self._p2a.clear()
                    reply = self._take_reply_if_free()
                    if reply is not None:  # else: spurious IRQ, ignored like Linux
                        return reply
                if remaining <= 0:
                    return None
        spin_until = time.monotonic() + _SPIN_S
        while True:
            if self._completed():
                return self._take_reply()
            now = time.monotonic()
            if now >= deadline:
                self._check_peer()
                return None
            if now > spin_until:
                self._check_peer()
                time.sleep(min(50e-6, max(0.0, deadline - now)))

    def _closed_channel(self, *_args: object, **_kwargs: object) -> None:
        raise TransportError(f"shm:{self.path}: transport is closed")

    def close(self) -> None:
        """Unmap and disconnect (the platform then accepts another agent)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self._ctl.close()
        for bell in (self._a2p, self._p2a):
            if bell is not None:
                bell.close()
        # the bound area methods hold the mapping too: drop them, or it cannot close
        self._post = self._take_response = self._closed_channel  # type: ignore[assignment]
        self.area = None  # type: ignore[assignment]
        with contextlib.suppress(BufferError, ValueError):
            self._mm.close()
        with contextlib.suppress(OSError):
            os.close(self._fd)
