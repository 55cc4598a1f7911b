"""Fixtures for transport tests: platform processes, temporary paths, FUSE mounts."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from memlat.frontends.fusemount import fuse_unavailable, is_mounted, unmount

# Paths of Unix sockets are limited to ~107 bytes: keep them short, under /tmp.
SHORT_TMP = "/tmp"


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short temporary directory (socket paths must stay under 108 bytes).

    Any FUSE mount left below it (e.g. by a killed platform process) is unmounted.
    """
    with tempfile.TemporaryDirectory(prefix="mlt-", dir=SHORT_TMP) as d:
        try:
            yield Path(d)
        finally:
            for child in Path(d).iterdir():
                if is_mounted(child):
                    unmount(child)


class PlatformProcess:
    """`memlat platform serve --factory platforms:make_platform ...` as a child process."""

    def __init__(self, *args: str):
        self.args = args
        self.proc: subprocess.Popen[str] | None = None
        #: stderr lines printed before "ready" (warnings about recovered paths)
        self.early: list[str] = []

    def start(self, timeout_s: float = 60.0) -> PlatformProcess:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "memlat", "platform", "serve", "--quiet",
             "--factory", "platforms:make_platform", *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        deadline = time.monotonic() + timeout_s
        assert self.proc.stderr is not None
        # raw reads, not select + readline: readline may buffer the "ready" line behind
        # an earlier one, and select() on the pipe then never fires again
        fd, pending = self.proc.stderr.fileno(), b""
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.1)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                pending += chunk
                while b"\n" in pending:
                    raw, pending = pending.split(b"\n", 1)
                    line = raw.decode(errors="replace") + "\n"
                    self.early.append(line)
                    if line.startswith("ready"):
                        return self
            if self.proc.poll() is not None:
                break
        exited = self.proc.poll() is not None
        self.kill()
        rest = self.proc.stderr.read() if exited else ""
        raise RuntimeError(f"platform process did not start ({'exited' if exited else 'timeout'}"
                           f"): {''.join(self.early)}{rest}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.terminate()
        return self.proc.wait(15)


@pytest.fixture
def platform_process() -> Iterator[type[PlatformProcess]]:
    """Factory for platform processes; every one started is killed at teardown."""
    started: list[PlatformProcess] = []

    class Tracked(PlatformProcess):
        def start(self, timeout_s: float = 60.0) -> PlatformProcess:
            started.append(self)
            return super().start(timeout_s)

    yield Tracked
    for p in started:
        p.kill()


@pytest.fixture(scope="session")
def _fuse_reason() -> str | None:
    """Why FUSE cannot be used here (None: a trial mount worked)."""
    reason = fuse_unavailable()
    if reason is not None:
        return reason
    from memlat.errors import TransportError
    from memlat.frontends.fuse_mailbox import MailboxFuse
    from memlat.scmi.platform import Platform

    with tempfile.TemporaryDirectory(prefix="mlt-fuse-", dir=SHORT_TMP) as d:
        try:
            MailboxFuse(Platform(), Path(d) / "m").start().stop()
        except TransportError as exc:
            return f"trial mount failed: {exc}"
        finally:
            unmount(Path(d) / "m")
    return None


@pytest.fixture
def fuse_ok(_fuse_reason: str | None) -> None:
    """Skip (with the reason) when FUSE cannot mount here."""
    if _fuse_reason is not None:
        pytest.skip(f"FUSE unavailable: {_fuse_reason}")


@pytest.fixture
def mountpoint(short_tmp: Path, fuse_ok: None) -> Iterator[Path]:
    """An empty directory to mount on; always unmounted at teardown."""
    mnt = short_tmp / "mnt"
    mnt.mkdir()
    yield mnt
    unmount(mnt)
    assert not is_mounted(mnt)
