"""What every platform-side front-end shares: a thread-safe gate to one `Platform`.

Several front-ends (socket, shared memory, FUSE trees) may serve the same emulated
platform at once; `PlatformGate` serialises them, because `Platform` keeps state and
is not thread-safe.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from abc import ABC, abstractmethod
from typing import Any, Self

from memlat.scmi.platform import Platform
from memlat.scmi.smt import SmtArea


class PlatformGate:
    """One lock around a `Platform`, shared by all front-ends serving it."""

    def __init__(self, platform: Platform):
        self.platform = platform
        self.lock = threading.Lock()

    def handle_bytes(self, data: bytes, agent_id: int = 1) -> bytes | None:
        """`Platform.handle_bytes` under the lock."""
        with self.lock:
            return self.platform.handle_bytes(data, agent_id)

    def serve_area(self, area: SmtArea, agent_id: int = 1) -> bool:
        """`Platform.serve_area` under the lock; True when a completion IRQ is owed."""
        with self.lock:
            return self.platform.serve_area(area, agent_id)


def as_gate(platform: Platform | PlatformGate) -> PlatformGate:
    """Wrap a bare platform in a gate (a gate passes through unchanged)."""
    return platform if isinstance(platform, PlatformGate) else PlatformGate(platform)


class FrontEnd(ABC):
    """A platform-side endpoint external agents reach; runs in its own thread."""

    #: URI-style description, e.g. "unix:/tmp/x.sock"
    name: str = "frontend"

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None

    @abstractmethod
    def _run(self) -> None:
        """The serving loop; returns once `stop()` was asked."""

    @abstractmethod
    def _request_stop(self) -> None:
        """Ask the serving loop to return soon (called from another thread)."""

    def _cleanup(self) -> None:  # noqa: B027 - optional hook
        """Remove files, sockets, mounts after the loop ended."""

    def start(self) -> FrontEnd:
        """Serve in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self._guarded_run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def _guarded_run(self) -> None:
        try:
            self._run()
        finally:
            self._cleanup()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving and clean up; safe to call twice."""
        self._request_stop()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    @property
    def running(self) -> bool:
        """The serving thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> FrontEnd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FuseFrontEnd(FrontEnd):
    """A front-end served by a FUSE mount: libfuse runs the loop, so start() mounts and
    stop() wakes blocked readers before unmounting.

    Subclasses set `self.operations` (with a `shutdown()`) and `self._mount` (a
    memlat.frontends.fusemount.FuseMount).
    """

    operations: Any
    _mount: Any

    def start(self) -> Self:
        """Mount; returns once the file tree is live."""
        self._mount.mount()
        return self

    def _run(self) -> None:  # libfuse has its own loop; start() is overridden
        raise NotImplementedError

    def _request_stop(self) -> None:
        self.operations.shutdown()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Wake blocked readers and pollers, unmount, wait for the FUSE loop."""
        self.operations.shutdown()
        self._mount.unmount(timeout_s)

    @property
    def running(self) -> bool:
        """The tree is mounted."""
        return bool(self._mount.mounted)


class PollingFrontEnd(FrontEnd):
    """A front-end whose loop polls file descriptors: `_stop_r` becomes readable when
    stop() is asked (a self-pipe), and cleanup runs once, whichever thread gets there.

    Subclasses poll `_stop_r` beside their own descriptors, check `_stopping`, and
    release their resources in `_release()`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._stop_r, self._stop_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._stopping = False
        self._cleaned = False

    def _request_stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            os.write(self._stop_w, b"x")

    @abstractmethod
    def _release(self) -> None:
        """Close sockets, remove files: everything but the stop pipe."""

    def _cleanup(self) -> None:
        if self._cleaned:
            return
        self._cleaned = True
        try:
            self._release()
        finally:
            for fd in (self._stop_r, self._stop_w):
                with contextlib.suppress(OSError):
                    os.close(fd)


def listen_owner_only(path: str, backlog: int) -> socket.socket:
    """A non-blocking Unix listening socket at `path` (a stale file is replaced), created
    with mode 0600 from birth through the umask, so there is no chmod race."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        listener.bind(path)
    finally:
        os.umask(old)
    listener.listen(backlog)
    listener.setblocking(False)
    return listener
