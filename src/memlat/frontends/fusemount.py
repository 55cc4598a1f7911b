"""Mounting a FUSE file system in a background thread, and unmounting it for sure.

Shared by the raw-mode and mailbox-test front-ends. FUSE is an optional extra
(`mfusepy`, which loads libfuse); `fuse_unavailable()` says why it cannot be used here.

Path safety (`FuseMount.mount`): the directories it has to create are recorded and
removed again on unmount, nothing else is; a live mount at the path is refused; a dead
FUSE mount (stat fails with ENOTCONN, errno 107) whose file-system name is one of ours
("memlat-...", left by a killed server) is unmounted with a warning and reused; a
dead mount of any other file system, a non-directory or a non-empty directory is refused.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
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

log = logging.getLogger(__name__)

#: file-system names of our mounts start with this (fsname= in /proc/mounts)
FSNAME_PREFIX = "memlat"


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


def mount_source(mountpoint: str | os.PathLike[str]) -> str | None:
    """The file-system name (first /proc/mounts field) of the mount at the path, or None
    when nothing is mounted there. Works for dead FUSE mounts too."""
    path = os.path.realpath(os.fspath(mountpoint))
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) > 1 and fields[1].replace("\\040", " ") == path:
                    return fields[0]
        return None
    except OSError:
        return "?" if os.path.ismount(path) else None


def is_mounted(mountpoint: str | os.PathLike[str]) -> bool:
    """A mount (live, or dead with "Transport endpoint is not connected") is at the path.

    os.path.ismount() says False for a dead FUSE mount, so /proc/mounts decides.
    """
    return mount_source(mountpoint) is not None


def is_dead_mount(mountpoint: str | os.PathLike[str]) -> bool:
    """The path is a FUSE mount whose server is gone (statfs → ENOTCONN, errno 107).

    statfs, not stat: the kernel answers stat of the mount root from its attribute cache
    for up to attr_timeout after the server died, while STATFS always goes to the
    server (fs/fuse/inode.c fuse_statfs)."""
    try:
        os.statvfs(mountpoint)
    except OSError as exc:
        return exc.errno == errno.ENOTCONN
    return False


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


class FuseOperations:
    """Base of our mfusepy operations: remembers the libfuse session at init."""

    #: libfuse `struct fuse_session *` of the running mount (set by `init`)
    fuse_session: int | None = None

    def init(self, path: str) -> None:
        """Called by libfuse in the mount's loop thread: note the session."""
        import mfusepy

        lib = mfusepy._libfuse
        lib.fuse_get_session.restype = ctypes.c_void_p
        lib.fuse_get_session.argtypes = [ctypes.c_void_p]
        fuse = lib.fuse_get_context().contents.fuse
        self.fuse_session = lib.fuse_get_session(fuse) if fuse else None


def _claim_signal_session(session: int | None) -> None:
    """Make `session` libfuse's signal-handler owner before its loop ends.

    libfuse keeps one global `fuse_instance` for its signal handlers: every mount's set
    overwrites it, and a teardown whose session is not the current owner prints
    "fuse: fuse_remove_signal_handlers: unknown session" (lib/fuse_signals.c). With two
    mounts in one process that happens on every shutdown. Re-claiming just before the
    unmount keeps the teardown quiet; Python's own handlers are put back afterwards.
    """
    if not session:
        return
    import mfusepy

    lib = mfusepy._libfuse
    lib.fuse_set_signal_handlers.argtypes = [ctypes.c_void_p]
    lib.fuse_set_signal_handlers(ctypes.c_void_p(session))


def _missing_dirs(path: Path) -> list[Path]:
    """The directories `mkdir(parents=True)` would create for `path`, outermost first."""
    missing: list[Path] = []
    current = path
    while not os.path.lexists(current):
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    return list(reversed(missing))


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
        self._created: list[Path] = []  # directories mount() made, outermost first

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
        self._prepare_mountpoint()
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

    def _prepare_mountpoint(self) -> None:
        """Create the mount point (remembering what we made), recover a dead mount of
        ours, refuse anything else that is in the way (TransportError)."""
        where = self.mountpoint
        source = mount_source(where)
        if source is not None:
            if not is_dead_mount(where):
                raise TransportError(
                    f"{where} is already a live mount point ({source}); is another "
                    "`memlat platform serve` running there? Stop it or pick another path")
            if not source.startswith(FSNAME_PREFIX):
                raise TransportError(
                    f"{where} is a dead mount of {source!r}, not one of memlat's; "
                    f"unmount it yourself (fusermount -u {where})")
            log.warning("%s: recovering a dead FUSE mount (%s) left by a server that was "
                        "killed: unmounting it", where, source)
            unmount(where)
            if is_mounted(where):
                raise TransportError(f"{where}: could not unmount the dead FUSE mount")
        if os.path.lexists(where):
            if where.is_symlink() or not where.is_dir():
                raise TransportError(f"{where} exists and is not a directory; refusing "
                                     "to mount over it")
            if any(os.scandir(where)):
                raise TransportError(f"{where} is a non-empty directory; refusing to mount "
                                     "over (and hide) its contents")
            return
        missing = _missing_dirs(where)
        try:
            where.mkdir(parents=True)
        except OSError as exc:
            raise TransportError(f"cannot create mount point {where}: {exc.strerror}") from exc
        self._created = missing

    def unmount(self, timeout_s: float = 5.0) -> None:
        """Unmount, wait for the FUSE loop to end, remove the directories mount() made."""
        if self._thread is not None and self._thread.is_alive():
            _claim_signal_session(getattr(self.operations, "fuse_session", None))
        unmount(self.mountpoint)
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self._restore_signals()
        if not is_mounted(self.mountpoint):
            for directory in reversed(self._created):
                with contextlib.suppress(OSError):  # not empty any more: not ours to remove
                    directory.rmdir()
            self._created = []

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
