"""Path safety for the front-ends that create sockets (`--unix PATH`, `--shm PATH`'s
control socket `PATH.ctl`; the shm channel memory itself is an anonymous memfd).

The rule (the project's standards): serve never deletes or replaces anything it did not
create. So:

- A path in the way is inspected with `lstat` (symlinks are never followed). A regular
  file, directory, symlink or anything else that is not a socket is refused and kept.
- A socket is probed by connecting to it. If something accepts, a server is alive there
  and we refuse with a clear message; if the connection is refused, the socket is stale
  (its server is gone) and it is removed with a warning, then recreated.
- What we created is remembered by (device, inode); on stop it is removed only if the
  path still names that very file, so a successor's live socket is never deleted.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import stat
from dataclasses import dataclass

from memlat.errors import TransportError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Created:
    """A file we created: its path and identity (st_dev, st_ino) at creation."""

    path: str
    dev: int
    ino: int

    @classmethod
    def of(cls, path: str) -> Created:
        """Record the file now at `path` (just created by us)."""
        st = os.lstat(path)
        return cls(path, st.st_dev, st.st_ino)

    def remove(self) -> bool:
        """Unlink the path if it still names the file we created; True if removed."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return False
        if (st.st_dev, st.st_ino) != (self.dev, self.ino):
            log.warning("%s was replaced by someone else since we created it; leaving it",
                        self.path)
            return False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        return True


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    return "not a socket"


def not_a_socket(path: str) -> str:
    """The refusal for a path that holds something other than a socket."""
    return (f"{path} exists and is {_kind(os.lstat(path).st_mode)}, not a socket; "
            "refusing to replace it (remove it yourself or pick another path)")


def socket_state(path: str) -> str:
    """What is at `path`: "absent", "stale" (a socket nobody listens on), "live" (a
    socket a server accepts on) or "other" (anything that is not a socket)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "absent"
    if not stat.S_ISSOCK(st.st_mode):
        return "other"
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        return "stale"
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            return "stale"
        return "live"  # e.g. EAGAIN: a backlog full of clients is a live server
    finally:
        probe.close()
    return "live"


def claim_socket_path(path: str) -> None:
    """Make `path` free for a new listening socket: nothing there, or a stale socket
    (removed with a warning). A live server or a non-socket raises TransportError."""
    state = socket_state(path)
    if state == "absent":
        return
    if state == "live":
        raise TransportError(
            f"{path}: a server is already listening on this socket (another `memlat "
            "platform serve`?); refusing to take it over. Stop it or pick another path")
    if state == "other":
        raise TransportError(not_a_socket(path))
    log.warning("%s: removing a stale socket left by a server that is gone", path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
