"""`memlat bench` suite "transports": SCMI round trips per second over each transport.

Every cross-process figure comes with a same-run baseline: a bare echo over the same
mechanism (same doorbells and shared file, same socket framing, same FUSE file
round trip) with no SCMI code on either side. `bare_pingpong_ratio` = our round-trip
time / the bare one (lower is better; 1 would mean SCMI costs nothing). The platform
always runs in its own process (`memlat platform serve`); each SCMI round trip is a
base PROTOCOL_VERSION command, as in real use.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from memlat.agent.session import open_session
from memlat.config.profiles import DEFAULT_SOC
from memlat.cpucp.boot import make_cpucp_platform
from memlat.frontends.fusemount import fuse_unavailable, unmount
from memlat.scmi.agent import Agent
from memlat.scmi.platform import BASE_PROTOCOL_ID as BASE_PROTOCOL
from memlat.transports.inproc import InProcessTransport
from memlat.transports.raw import RawTransport
from memlat.transports.shm import ShmTransport
from memlat.transports.unix import UnixTransport

PROTOCOL_VERSION = 0x0  # every SCMI protocol's message 0 (protocol.md §1.2)

PAYLOAD = b"\x01\x02\x03\x04"


@contextlib.contextmanager
def _process(args: list[str], *, ready: str = "ready") -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        assert proc.stderr is not None
        while time.monotonic() < deadline:
            if select.select([proc.stderr], [], [], 0.1)[0]:
                line = proc.stderr.readline()
                if line.startswith(ready):
                    break
                if not line:
                    raise RuntimeError(f"{args} exited before it was ready")
        else:
            raise RuntimeError(f"{args} not ready in 30 s")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _rate(n: int, step: Callable[[], object]) -> float:
    for _ in range(min(50, n)):  # warm-up
        step()
    start = time.perf_counter()
    for _ in range(n):
        step()
    return n / (time.perf_counter() - start)


def _agent_rate(transport: Any, n: int) -> float:
    agent = Agent(transport, timeout_s=5)
    try:
        return _rate(n, lambda: agent.call(BASE_PROTOCOL, PROTOCOL_VERSION))
    finally:
        agent.close()


def _serve(*args: str) -> list[str]:
    return ["-m", "memlat", "platform", "serve", "--quiet", *args]


# -- bare baselines (no SCMI code) -------------------------------------------------------
_BARE_SHM = textwrap.dedent("""
    import mmap, os, select, sys
    a2p, p2a, path, kind = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    fd = os.open(path, os.O_RDWR); mm = mmap.mmap(fd, 0x400)
    print("ready", file=sys.stderr, flush=True)
    p = select.poll(); p.register(a2p, select.POLLIN)
    while True:
        p.poll()
        if kind == "eventfd": os.eventfd_read(a2p)
        elif not os.read(a2p, 64): break
        n = int.from_bytes(mm[0x14:0x18], "little")
        mm[0x1C:0x1C + n] = mm[0x1C:0x1C + n]   # "reply": copy the bytes in place
        mm[4:8] = b"\\x01\\0\\0\\0"
        if kind == "eventfd": os.eventfd_write(p2a, 1)
        else: os.write(p2a, b"\\x01")
""")

_BARE_UNIX = textwrap.dedent("""
    import socket, sys
    s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
    print("ready", file=sys.stderr, flush=True)
    c, _ = s.accept()
    while True:
        data = c.recv(65536)
        if not data: break
        c.sendall(data)
""")

_BARE_FUSE = textwrap.dedent("""
    import errno, stat, sys, threading, warnings
    import mfusepy as fuse
    class Echo:
        use_ns = True
        def __init__(self): self.data = b""; self.cond = threading.Condition()
        def getattr(self, path, fh=None):
            if path == "/": return {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2}
            if path == "/echo": return {"st_mode": stat.S_IFREG | 0o600, "st_nlink": 1}
            raise fuse.FuseOSError(errno.ENOENT)
        def readdir(self, path, fh): return [".", "..", "echo"]
        def open(self, path, fi): fi.direct_io = 1; return 0
        def truncate(self, path, length, fh=None): return 0
        def write(self, path, data, offset, fi):
            with self.cond: self.data = data
            return len(data)
        def read(self, path, size, offset, fi):
            with self.cond: data, self.data = self.data, b""
            return data
    def ready():
        import os, time
        while not os.path.ismount(sys.argv[1]): time.sleep(0.01)
        print("ready", file=sys.stderr, flush=True)
    threading.Thread(target=ready, daemon=True).start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fuse.FUSE(Echo(), sys.argv[1], foreground=True, raw_fi=True)
""")


def _bare_shm(tmp: Path, n: int, kind: str) -> float:
    path = tmp / "bare-ch"
    path.write_bytes(bytes(0x400))
    if kind == "eventfd":
        a2p, p2a = os.eventfd(0), os.eventfd(0)
        fds = (a2p, p2a, a2p, p2a)  # child's a2p read, p2a write; ours: a2p write, p2a read
    else:
        a_r, a_w = os.pipe()
        p_r, p_w = os.pipe()
        fds = (a_r, p_w, a_w, p_r)
    fd = os.open(path, os.O_RDWR)
    mm = mmap.mmap(fd, 0x400)
    proc = subprocess.Popen([sys.executable, "-c", _BARE_SHM, str(fds[0]), str(fds[1]),
                             str(path), kind], pass_fds=(fds[0], fds[1]),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        poller = select.poll()
        poller.register(fds[3], select.POLLIN)
        message = struct.pack("<I", 0x3C003) + PAYLOAD

        def step() -> None:
            mm[4:8] = bytes(4)
            mm[0x14:0x18] = struct.pack("<I", len(message))
            mm[0x18 : 0x18 + len(message)] = message
            if kind == "eventfd":
                os.eventfd_write(fds[2], 1)
            else:
                os.write(fds[2], b"\x01")
            poller.poll()
            if kind == "eventfd":
                os.eventfd_read(fds[3])
            else:
                os.read(fds[3], 64)
            bytes(mm[0x18 : 0x18 + len(message)])

        return _rate(n, step)
    finally:
        proc.kill()
        proc.wait()
        mm.close()
        os.close(fd)
        for f in set(fds):
            os.close(f)


def _bare_unix(tmp: Path, n: int) -> float:
    path = str(tmp / "bare.sock")
    with _process(["-c", _BARE_UNIX, path]):
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(path)
        frame = struct.pack("<I", 8) + struct.pack("<I", 0x3C003) + PAYLOAD

        def step() -> None:
            sock.sendall(frame)
            sock.recv(65536)

        try:
            return _rate(n, step)
        finally:
            sock.close()


def _bare_fuse(tmp: Path, n: int) -> float:
    mnt = tmp / "bare-fuse"
    mnt.mkdir()
    try:
        with _process(["-c", _BARE_FUSE, str(mnt)]):
            fd = os.open(mnt / "echo", os.O_RDWR)
            message = struct.pack("<I", 0x3C003) + PAYLOAD

            def step() -> None:
                os.write(fd, message)
                os.read(fd, 256)

            try:
                return _rate(n, step)
            finally:
                os.close(fd)
    finally:
        unmount(mnt)


# -- suite ---------------------------------------------------------------------------------
def run(quick: bool = False) -> dict[str, Any]:
    """Round trips per second per transport, with bare-echo ratios."""
    n = 300 if quick else 3000
    per: dict[str, dict[str, float]] = {}
    doorbells: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="mlt-bench-", dir="/tmp") as d:
        tmp = Path(d)

        ours = _agent_rate(InProcessTransport(make_cpucp_platform()[0]), n)
        area = bytearray(0x200)
        bare = _rate(n, lambda: area.__setitem__(slice(0x18, 0x20), PAYLOAD * 2)
                     or bytes(area[0x18:0x20]))
        per["inproc"] = {"roundtrips_per_s": ours, "bare_pingpong_ratio": bare / ours}

        for kind in ("eventfd", "pipe", "poll"):
            ch = tmp / f"ch-{kind}"
            with _process(_serve("--shm", str(ch), "--doorbell", kind)):
                doorbells[kind] = _agent_rate(ShmTransport(ch), n)
        bare = _bare_shm(tmp, n, "eventfd")
        per["shm"] = {"roundtrips_per_s": doorbells["eventfd"],
                      "bare_pingpong_ratio": bare / doorbells["eventfd"]}

        sock = tmp / "p.sock"
        with _process(_serve("--unix", str(sock))):
            ours = _agent_rate(UnixTransport(sock), n)
        bare = _bare_unix(tmp, n)
        per["unix"] = {"roundtrips_per_s": ours, "bare_pingpong_ratio": bare / ours}

        if fuse_unavailable() is None:
            raw = tmp / "raw"
            try:
                with _process(_serve("--raw-fuse", str(raw))):
                    transport = RawTransport(raw)
                    ours = _agent_rate(transport, n // 3)
                bare = _bare_fuse(tmp, n // 3)
                per["raw_fuse"] = {"roundtrips_per_s": ours, "bare_pingpong_ratio": bare / ours}
            except RuntimeError:
                pass  # mounting refused here; the figure is simply absent
            finally:
                unmount(raw)

    figures: dict[str, Any] = {"transports": per, "shm_doorbells_roundtrips_per_s": doorbells}
    for name, values in per.items():
        figures[f"roundtrips_per_s_{name}"] = values["roundtrips_per_s"]
    figures["probe_x1e80100_s"] = _probe_seconds()
    return figures


def _probe_seconds() -> float:
    """Wall time of a full probe of the default SoC over inproc."""
    start = time.perf_counter()
    session = open_session(soc=DEFAULT_SOC)
    session.probe()
    session.close()
    return time.perf_counter() - start
