"""Mounting a FUSE file system in a background thread, and unmounting it for sure.

Shared by the raw-mode and mailbox-test front-ends. FUSE is an optional extra
(`mfusepy`, which loads libfuse); `fuse_unavailable()` says why it cannot be used here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from memlat.errors import TransportError


def fuse_unavailable() -> str | None:
    """None when FUSE mounts can work here, else the reason they cannot."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "no permission to open /dev/fuse"
    if _fusermount() is None and os.geteuid() != 0:
        return "neither fusermount3 nor fusermount is installed"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:  # libfuse missing -> OSError
        return f"mfusepy cannot load libfuse ({exc})"
    return None


def _fusermount() -> str | None:
    return shutil.which("fusermount3") or shutil.which("fusermount")


def is_mounted(mountpoint: str | os.PathLike[str]) -> bool:
    """A mount (live, or dead with "Transport endpoint is not connected") is at the path.

    os.path.ismount() says False for a dead FUSE mount, so /proc/mounts decides.
    """
    path = os.path.realpath(os.fspath(mountpoint))
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) > 1 and fields[1].replace("\\040", " ") == path:
                    return True
        return False
    except OSError:
        return os.path.ismount(path)


def unmount(mountpoint: str | os.PathLike[str]) -> None:
    """Unmount (lazily if busy); quiet when nothing is mounted there."""
    path = os.fspath(mountpoint)
    if not is_mounted(path):
        return
    tool = _fusermount()
    for args in (["-u"], ["-u", "-z"]):
        if tool is not None:
            result = subprocess.run([tool, *args, path], capture_output=True, check=False)
            if result.returncode == 0:
                return
        else:  # root without fusermount: plain umount
            result = subprocess.run(["umount", *(["-l"] if "-z" in args else []), path],
                                    capture_output=True, check=False)
            if result.returncode == 0:
                return


class FuseMount:
    """Runs `operations` mounted at `mountpoint` in a daemon thread until `unmount()`."""

    def __init__(self, operations: Any, mountpoint: str | os.PathLike[str], *,
                 fsname: str = "memlat"):
        self.operations = operations
        self.mountpoint = Path(mountpoint)
        self.fsname = fsname
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._signals: dict[int, object] = {}

    def _main(self) -> None:
        import mfusepy

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                mfusepy.FUSE(self.operations, str(self.mountpoint), foreground=True,
                             nothreads=False, raw_fi=True, fsname=self.fsname, intr=True)
        except BaseException as exc:  # reported by mount()
            self._error = exc

    def mount(self, timeout_s: float = 5.0) -> FuseMount:
        """Mount and wait until the mount point is live."""
        reason = fuse_unavailable()
        if reason is not None:
            raise TransportError(f"FUSE unavailable: {reason}")
        # libfuse claims default-handled signals while mounted and, on teardown, resets
        # SIGPIPE to SIG_DFL (Python ignores it), which would make a later write to a
        # closed socket kill the process; unmount() puts the handlers back.
        self._signals = {sig: signal.getsignal(sig)
                         for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM,
                                     signal.SIGHUP)}
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        if is_mounted(self.mountpoint):
            raise TransportError(f"{self.mountpoint} is already a mount point")
        self._thread = threading.Thread(target=self._main, name=f"fuse:{self.mountpoint}",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not os.path.ismount(self.mountpoint):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.unmount()
                raise TransportError(
                    f"FUSE mount at {self.mountpoint} failed"
                    + (f": {self._error}" if self._error else " (see stderr)")
                )
            time.sleep(0.005)
        return self

    def unmount(self, timeout_s: float = 5.0) -> None:
        """Unmount and wait for the FUSE loop to end."""
        unmount(self.mountpoint)
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self._restore_signals()

    def _restore_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, handler in self._signals.items():
            if handler is not None:
                with contextlib.suppress(OSError, ValueError, TypeError):
                    signal.signal(sig, handler)  # type: ignore[arg-type]

    @property
    def mounted(self) -> bool:
        """The mount point is live."""
        with contextlib.suppress(OSError):
            return os.path.ismount(self.mountpoint)
        return False
