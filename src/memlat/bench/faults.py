"""`memlat bench --suite faults`: the reliability campaign of issue 17, seeded and bounded.

Each scenario runs real parts (sockets, memfds, processes) and returns counts, never
timings to assert on. `tests/faults` runs every scenario in a short form; `run()` is the
long form. Scenarios:

* `fuzz`: seeded random and mutated SCMI messages through a probed, running CPUCP
  platform (`Platform.handle_bytes`, base 0x10 and QCOM 0x80), counting exceptions,
  malformed replies and refused commands that changed `Platform.state()` (which now
  includes the CPUCP snapshot).
* `unix_crowd`: probes over `unix:` while non-reading flooders and idle connections are
  attached; counts probes that succeeded and flooders the front-end cut off.
* `unix_emfile`: a `memlat platform serve --unix` process with a small RLIMIT_NOFILE,
  more connections than it has descriptors, then a probe: the server must survive.
* `unix_backlog`: an agent against a listener whose backlog is full waits its connect
  timeout, and gets in once the listener accepts.
* `shm_truncate`: truncating the channel memory (through every path a process can
  reach it) is refused; the agent keeps working; nothing is left on disk.
* `shm_cycles`: rapid connect/close on one shm channel, counting refusals.
"""

from __future__ import annotations

import contextlib
import os
import random
import resource
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from memlat.agent.session import open_session
from memlat.errors import TransportError
from memlat.frontends.shm import ShmFrontEnd
from memlat.frontends.unix import UnixFrontEnd
from memlat.qcom import codec
from memlat.qcom.ids import Algorithm, ParamId, QcomMessage
from memlat.scmi.agent import Agent
from memlat.scmi.header import Header, MessageType
from memlat.scmi.platform import Platform
from memlat.scmi.status import Status
from memlat.transports.shm import ShmTransport
from memlat.transports.unix import UnixTransport, encode_frame

SOC = "x1e80100"
_STATUSES = {int(s) for s in Status}


@contextlib.contextmanager
def _short_dir() -> Iterator[Path]:
    """Unix socket paths must stay under 108 bytes: a directory directly under /tmp."""
    with tempfile.TemporaryDirectory(prefix="mlf-", dir="/tmp") as d:
        yield Path(d)


def raise_nofile(want: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards `want` (never above the hard
    limit); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def probed_platform() -> Platform:
    """A CPUCP platform for x1e80100 after a full probe over inproc (running)."""
    session = open_session(soc=SOC)
    result = session.probe()
    if not result.ok or session.platform is None:
        raise RuntimeError(result.summary())
    return session.platform


# -- fuzz -------------------------------------------------------------------------------
def _message(rng: random.Random) -> bytes:
    """One command: mostly well-aimed (base or QCOM, plausible params), some mutated."""
    kind = rng.random()
    token = rng.randrange(1024)
    reserved = rng.choice((0,) * 14 + (1, 0xF))
    if kind < 0.05:
        return rng.randbytes(rng.randrange(0, 12))
    if kind < 0.10:  # oversized: beyond the channel's 104 bytes, up to 4 KiB
        head = Header(rng.randrange(0x20), rng.choice((0x10, 0x80)), token).to_bytes()
        return head + rng.randbytes(rng.randrange(105, 4096))
    mtype = MessageType.COMMAND if rng.random() < 0.97 else rng.choice(list(MessageType))
    if kind < 0.35:
        header = Header(rng.randrange(0x10), 0x10, token, mtype, reserved)
        words = [rng.choice((0, 1, 2, 0x10, 0x80, 0xFFFF_FFFF, rng.getrandbits(32)))
                 for _ in range(rng.randrange(0, 5))]
        return header.to_bytes() + struct.pack(f"<{len(words)}I", *words)
    message = rng.choice([int(m) for m in QcomMessage] + [0, 1, 2])
    header = Header(message, 0x80, token, mtype, reserved)
    algo = rng.choice((Algorithm.MEMLAT, Algorithm.MEMLAT, Algorithm.MEMLAT_RFC,
                       rng.getrandbits(64)))
    param = rng.choice([int(p) for p in ParamId] + [rng.getrandbits(32)])
    body_words = [rng.choice((0, 1, 2, 3, 0xF, 0xFFF, 1000, rng.getrandbits(32)))
                  for _ in range(rng.randrange(0, 22))]
    body = struct.pack(f"<{len(body_words)}I", *body_words)
    payload = codec.encode_request(int(algo), param, body)
    if rng.random() < 0.2:  # mutate: flip a byte or cut the tail
        data = bytearray(payload)
        if data and rng.random() < 0.5:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        else:
            del data[rng.randrange(len(data) + 1):]
        payload = bytes(data)
    return header.to_bytes() + payload


def fuzz(messages: int = 100_000, seed: int = 17) -> dict[str, int]:
    """Seeded fuzz through a probed, running CPUCP platform.

    Returns counts: messages, exceptions, malformed (a reply that is not header + status
    [+ values] with a known status, or a refusal with values), refused (non-SUCCESS),
    refused_state_changes (refused commands after which Platform.state() differed),
    transport_refusals (no reply owed), successes; qcom_successes and qcom_refused count
    the protocol 0x80 share.
    """
    rng = random.Random(seed)
    platform = probed_platform()
    out = dict.fromkeys(("messages", "exceptions", "malformed", "refused",
                         "refused_state_changes", "transport_refusals", "successes",
                         "qcom_successes", "qcom_refused"), 0)
    state = platform.state()
    for _ in range(messages):
        data = _message(rng)
        out["messages"] += 1
        try:
            reply = platform.handle_bytes(data)
        except Exception:
            out["exceptions"] += 1
            state = platform.state()
            continue
        after = platform.state()
        if reply is None:
            out["transport_refusals"] += 1
            out["refused_state_changes"] += after != state
        elif len(reply) < 8 or reply[:4] != data[:4]:
            out["malformed"] += 1
        else:
            (status,) = struct.unpack_from("<i", reply, 4)
            if status not in _STATUSES:
                out["malformed"] += 1
            elif status == Status.SUCCESS:
                out["successes"] += 1
                out["qcom_successes"] += data[1] >> 2 | (data[2] & 0x3) << 6 == 0x80
            else:
                out["refused"] += 1
                out["qcom_refused"] += data[1] >> 2 | (data[2] & 0x3) << 6 == 0x80
                out["malformed"] += len(reply) != 8
                out["refused_state_changes"] += after != state
        state = after
    return out


# -- unix: a crowd of bad clients ------------------------------------------------------
def _flood(socks: list[socket.socket], stop: threading.Event) -> None:
    """Send commands on every socket, never reading a reply, until cut off or stopped."""
    frame = encode_frame(Header(0x0, 0x10, 1).to_bytes())
    burst = frame * 32
    live = list(socks)
    while live and not stop.is_set():
        for sock in list(live):
            try:
                sock.send(burst, socket.MSG_NOSIGNAL | socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except OSError:
                live.remove(sock)
        time.sleep(0.005)


def unix_crowd(probes: int = 20, flooders: int = 20, idle: int = 200) -> dict[str, int]:
    """Probes over `unix:` with `flooders` non-reading clients and `idle` idle ones.

    Flooders send bursts of commands every 5 ms and never read; each is cut off once its
    unsent replies pass the front-end's limit. Returns probes, probes_ok, flooders,
    flooders_attached_at_first_probe, probes_started_with_flooders_attached,
    flooders_cut_off, idle, server_running.
    """
    raise_nofile(2 * (flooders + idle) + 256)
    platform = probed_platform()
    with _short_dir() as d:
        path = d / "s.sock"
        front = UnixFrontEnd(platform, path)
        front.start()
        socks: list[socket.socket] = []
        stop = threading.Event()
        try:
            for _ in range(idle + flooders):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(os.fspath(path))
                socks.append(sock)
            deadline = time.monotonic() + 10
            while front.clients < idle + flooders and time.monotonic() < deadline:
                time.sleep(0.005)
            flood = threading.Thread(target=_flood, args=(socks[idle:], stop), daemon=True)
            flood.start()
            ok = 0
            attached: list[int] = []
            for _ in range(probes):
                attached.append(front.clients - idle)
                session = open_session(soc=SOC, transport=f"unix:{path}")
                try:
                    ok += session.probe().ok
                finally:
                    session.close()
            deadline = time.monotonic() + 10
            while front.cut_off < flooders and time.monotonic() < deadline:
                time.sleep(0.01)
            stop.set()
            flood.join(5)
            return {"probes": probes, "probes_ok": ok, "flooders": flooders,
                    "flooders_attached_at_first_probe": attached[0] if attached else 0,
                    "probes_started_with_flooders_attached": sum(a > 0 for a in attached),
                    "flooders_cut_off": front.cut_off, "idle": idle,
                    "server_running": int(front.running)}
        finally:
            stop.set()
            for sock in socks:
                sock.close()
            front.stop()


# -- unix: out of descriptors ----------------------------------------------------------
_SERVE_LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[1])))
sys.argv = ["memlat", "platform", "serve", "--quiet", "--soc", sys.argv[2],
            "--unix", sys.argv[3]]
from memlat.cli import main
main()
"""


def unix_emfile(connections: int = 60, nofile: int = 48) -> dict[str, int]:
    """A served platform limited to `nofile` descriptors gets `connections` clients, then
    they leave and a probe runs. Returns connections, accepted_probe_ok, server_alive."""
    raise_nofile(connections + 256)
    with _short_dir() as d:
        path = d / "s.sock"
        proc = subprocess.Popen([sys.executable, "-c", _SERVE_LIMITED, str(nofile), SOC,
                                 os.fspath(path)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        socks: list[socket.socket] = []
        try:
            deadline = time.monotonic() + 30
            while not path.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read() if proc.stderr is not None else ""
                    raise RuntimeError(f"platform did not start: {err}")
                time.sleep(0.02)
            for _ in range(connections):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                with contextlib.suppress(OSError):
                    sock.connect(os.fspath(path))
                socks.append(sock)
            time.sleep(0.3)  # let the server hit EMFILE and back off
            alive_under_load = proc.poll() is None
            for sock in socks:
                sock.close()
            socks.clear()
            session = open_session(soc=SOC, transport=f"unix:{path}")
            try:
                ok = session.probe().ok
            finally:
                session.close()
            return {"connections": connections, "nofile": nofile,
                    "alive_under_load": int(alive_under_load), "probe_ok_after": int(ok),
                    "server_alive": int(proc.poll() is None)}
        finally:
            for sock in socks:
                sock.close()
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


# -- unix: full backlog ----------------------------------------------------------------
def unix_backlog(wait_s: float = 0.3) -> dict[str, Any]:
    """An agent against a listener whose backlog is full: without accept it fails after
    its connect timeout with a 'backlog' message; with an accept after `wait_s`/2 it gets
    in. Returns waited_s (rounded to 0.1 s), timeout_message_ok, joined_when_accepted."""
    with _short_dir() as d:
        path = os.fspath(d / "s.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(0)
        fillers: list[socket.socket] = []
        try:
            while True:  # fill the backlog until a non-blocking connect says EAGAIN
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.setblocking(False)
                try:
                    sock.connect(path)
                except BlockingIOError:
                    sock.close()
                    break
                fillers.append(sock)
            started = time.monotonic()
            message = ""
            try:
                UnixTransport(path, connect_timeout_s=wait_s).close()
            except TransportError as exc:
                message = str(exc)
            waited = time.monotonic() - started

            def accept_later() -> None:
                time.sleep(wait_s / 2)
                for _ in fillers:
                    conn, _ = listener.accept()
                    conn.close()

            threading.Thread(target=accept_later, daemon=True).start()
            try:
                UnixTransport(path, connect_timeout_s=wait_s * 10).close()
                joined = True
            except TransportError:
                joined = False
            return {"waited_s": round(waited, 1), "timeout_s": wait_s,
                    "timeout_message_ok": int("backlog" in message),
                    "joined_when_accepted": int(joined)}
        finally:
            for sock in fillers:
                sock.close()
            listener.close()


# -- shm -------------------------------------------------------------------------------
def _memfds(pid: int) -> list[str]:
    """Paths under /proc through which `pid`'s memlat channel memfds are reachable."""
    fd_dir = Path(f"/proc/{pid}/fd")
    found = []
    for entry in fd_dir.iterdir():
        with contextlib.suppress(OSError):
            if os.readlink(entry).startswith("/memfd:memlat-scmi-shmem"):
                found.append(os.fspath(entry))
    return found


def shm_truncate(round_trips: int = 100) -> dict[str, int]:
    """Try to truncate the channel memory of a connected agent/platform pair through
    every /proc path that reaches it (to 0 and to 1 byte); then run round trips.
    Returns attempts, truncations_refused, round_trips_ok, files_left."""
    platform = probed_platform()
    with _short_dir() as d:
        path = d / "ch"
        front = ShmFrontEnd(platform, path).start()
        attempts = refused = ok = 0
        try:
            agent = Agent(ShmTransport(path), timeout_s=5)
            try:
                for target in _memfds(os.getpid()):
                    for size in (0, 1, 1 << 20):
                        attempts += 1
                        try:
                            os.truncate(target, size)
                        except PermissionError:
                            refused += 1
                for _ in range(round_trips):
                    reply = agent.xfer(0x80, 0x0)
                    ok += reply.status == Status.SUCCESS
            finally:
                agent.close()
        finally:
            front.stop()
        left = sorted(p.name for p in d.iterdir())
    return {"attempts": attempts, "truncations_refused": refused, "round_trips": round_trips,
            "round_trips_ok": ok, "files_left": len(left)}


def shm_cycles(cycles: int = 2000) -> dict[str, int]:
    """Connect and close an agent `cycles` times in a row on one channel (every 100th
    does a round trip). Returns cycles, refused, round_trips_ok, files_left."""
    platform = probed_platform()
    refused = ok = 0
    with _short_dir() as d:
        path = d / "ch"
        with ShmFrontEnd(platform, path):
            for i in range(cycles):
                try:
                    transport = ShmTransport(path)
                except TransportError:
                    refused += 1
                    continue
                if i % 100 == 0:
                    ok += Agent(transport, timeout_s=5).xfer(0x80, 0).status == Status.SUCCESS
                transport.close()
        left = [p.name for p in d.iterdir()]
    return {"cycles": cycles, "refused": refused, "round_trips_ok": ok,
            "files_left": len(left)}


def run(quick: bool = False) -> dict[str, Any]:
    """Every scenario; quick is the CI size, the default the long form."""
    scale = 1 if quick else 10
    return {"faults": {
        "fuzz": fuzz(20_000 if quick else 200_000),
        "unix_crowd": unix_crowd(probes=5 * scale if quick else 40, flooders=20, idle=200),
        "unix_emfile": unix_emfile(connections=60, nofile=48),
        "unix_backlog": unix_backlog(0.3),
        "shm_truncate": shm_truncate(100 * scale),
        "shm_cycles": shm_cycles(500 if quick else 5000),
    }}
