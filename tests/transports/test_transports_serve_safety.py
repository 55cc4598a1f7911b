"""`memlat platform serve` never deletes or replaces what it did not create, refuses a
live server's paths, recovers what a killed server left, and leaves nothing behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from platforms import MSG_ECHO, TEST_PROTOCOL

from memlat.frontends.fusemount import is_mounted
from memlat.scmi.agent import Agent
from memlat.transports.unix import UnixTransport

ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
    [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))


def _serve_refused(*args: str, status: int = 1) -> str:
    """Run a serve that must refuse to start: exit `status` (2: bad input checked before
    serving, 1: found at run time, docs/cli.md), the message, no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "memlat", "platform", "serve", "--quiet", "--factory",
         "platforms:make_platform", *args],
        capture_output=True, text=True, timeout=60, env=ENV)
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def _echo(path: Path) -> bytes:
    agent = Agent(UnixTransport(path), timeout_s=5)
    try:
        return agent.call(TEST_PROTOCOL, MSG_ECHO, b"alive")
    finally:
        agent.close()


def test_regular_file_at_the_socket_path_is_refused_and_kept(short_tmp: Path) -> None:
    path = short_tmp / "precious.sock"
    path.write_text("not yours")
    err = _serve_refused("--unix", str(path), status=2)
    assert "is a regular file, not a socket; refusing to replace it" in err
    assert path.read_text() == "not yours"


def test_live_server_is_refused_and_keeps_its_socket(short_tmp: Path,
                                                     platform_process) -> None:
    path = short_tmp / "x.sock"
    first = platform_process("--unix", str(path)).start()
    err = _serve_refused("--unix", str(path))
    assert "a server is already listening on this socket" in err
    assert _echo(path) == b"alive"  # the first server still owns and serves the path
    assert first.terminate() == 0
    assert not path.exists()


def test_stale_socket_is_recovered_with_a_message(short_tmp: Path, platform_process) -> None:
    path = short_tmp / "stale.sock"
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens: what a killed server leaves
    server = platform_process("--unix", str(path))
    server.start()
    assert _echo(path) == b"alive"
    assert server.proc is not None
    assert server.terminate() == 0
    assert any("removing a stale socket" in line for line in server.early)


def test_shm_control_path_symlink_is_refused_and_kept(short_tmp: Path) -> None:
    """--shm PATH creates only the control socket PATH.ctl (the channel memory is a
    memfd); a symlink planted there is neither followed nor replaced."""
    target = short_tmp / "target"
    target.write_bytes(b"keep me")
    ctl = short_tmp / "ch.ctl"
    ctl.symlink_to(target)
    err = _serve_refused("--shm", str(short_tmp / "ch"), status=2)
    assert "is a symbolic link, not a socket; refusing to replace it" in err
    assert target.read_bytes() == b"keep me" and ctl.is_symlink()


def test_killed_shm_server_is_recovered(short_tmp: Path, platform_process) -> None:
    ch = short_tmp / "ch"
    ctl = Path(f"{ch}.ctl")
    first = platform_process("--shm", str(ch)).start()
    first.kill()  # SIGKILL: the control socket stays behind
    assert ctl.exists()
    second = platform_process("--shm", str(ch)).start()
    assert any("removing a stale socket" in line for line in second.early)
    assert second.terminate() == 0
    assert not ctl.exists() and not ch.exists()


def test_dead_fuse_mount_probe_error_and_recovery(short_tmp: Path, fuse_ok: None,
                                                  platform_process) -> None:
    raw = short_tmp / "raw"
    first = platform_process("--raw-fuse", str(raw)).start()
    first.kill()
    assert is_mounted(raw)
    probe = subprocess.run(
        [sys.executable, "-m", "memlat", "probe", "--soc", "x1e80100", "--transport",
         f"raw:{raw}"], capture_output=True, text=True, timeout=60)
    assert probe.returncode != 0
    assert "Traceback" not in probe.stderr, probe.stderr[-1500:]
    assert "errno 107 ENOTCONN" in probe.stderr + probe.stdout
    second = platform_process("--raw-fuse", str(raw)).start()
    assert (raw / "raw" / "message").exists()
    assert second.proc is not None
    assert second.terminate() == 0
    assert any("recovering a dead FUSE mount" in line for line in second.early)
    assert not is_mounted(raw)


def test_clean_shutdown_removes_only_what_it_created(short_tmp: Path, fuse_ok: None,
                                                     platform_process) -> None:
    keep = short_tmp / "keep"
    keep.mkdir()  # an existing, empty mount point: used, not removed
    nested = short_tmp / "a" / "b"
    nested.mkdir(parents=True)  # serve creates only the mount point, never its parents
    server = platform_process("--unix", str(short_tmp / "s.sock"), "--shm",
                              str(short_tmp / "ch"), "--raw-fuse", str(keep),
                              "--mailbox-fuse", str(nested / "mbox")).start()
    assert server.proc is not None
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(15) == 130  # Ctrl-C (docs/cli.md)
    stderr = server.proc.stderr.read()
    assert "unknown session" not in stderr and "Traceback" not in stderr
    assert sorted(p.name for p in short_tmp.iterdir()) == ["a", "keep"]
    assert not any(nested.iterdir())
    assert not is_mounted(keep) and not any(keep.iterdir())
