"""serve(): every front-end at once in a real process, discovery over each, clean stop."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from platforms import MSG_ECHO, TEST_PROTOCOL, base_platform, make_platform

from memlat.errors import ConfigError
from memlat.frontends.fusemount import is_mounted
from memlat.scmi.agent import Agent
from memlat.scmi.message import Message
from memlat.scmi.msgdump import exchange_lines
from memlat.scmi.protocols.base_agent import discover
from memlat.transports import open_transport
from memlat.transports.mailbox import MailboxTestTransport
from memlat.transports.uri import parse_uri

QCOM = 0x80


def _discover_and_version(agent: Agent) -> tuple[str, tuple[int, ...], int]:
    info = discover(agent)
    version = int.from_bytes(agent.call(QCOM, 0x0), "little")
    return info.vendor, info.protocols, version


def test_trace_lines_follow_scmi_msg_dump() -> None:
    command = Message.command(0x80, 0x10, bytes.fromhex("0000000054414c4d"), token=5)
    reply = Message.response(command.header, -2, b"")
    assert exchange_lines(command, reply) == [
        "id=0 ch=10 pt=80 t=CMND msg_id=10 seq=0005 s=0 pyld=0000000054414c4d",
        "id=0 ch=10 pt=80 t=RESP msg_id=10 seq=0005 s=-2 pyld=",
    ]
    assert exchange_lines(command, None, raw=True)[0].startswith("id=0 ch=10 pt=80 t=cmnd")


@pytest.mark.parametrize(("uri", "error"), [
    ("tcp:1.2.3.4", "unknown transport"), ("unix:", "needs a path"),
    ("inproc:x", "unknown transport|takes no path"), ("shm", "unknown transport"),
])
def test_bad_uris_are_config_errors(uri: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        parse_uri(uri)


def test_inproc_uri_needs_and_uses_a_factory() -> None:
    with pytest.raises(ConfigError, match="factory"):
        open_transport("inproc")
    agent = Agent(open_transport("inproc", platform_factory=make_platform), timeout_s=1)
    assert agent.call(TEST_PROTOCOL, MSG_ECHO, b"in") == b"in"
    assert _discover_and_version(agent)[2] == 0x10000


def test_every_front_end_in_one_process(short_tmp: Path, fuse_ok: None,
                                        platform_process) -> None:
    """Base discovery and PROTOCOL_VERSION(0x80) over unix, shm, raw FUSE, mailbox FUSE."""
    sock, shm = short_tmp / "p.sock", short_tmp / "ch"
    raw, mbox = short_tmp / "raw", short_tmp / "mbox"
    proc = platform_process("--unix", str(sock), "--shm", str(shm), "--raw-fuse", str(raw),
                            "--mailbox-fuse", str(mbox)).start()
    expected_ids = tuple(base_platform().protocol_ids())
    try:
        transports = [open_transport(f"unix:{sock}"), open_transport(f"shm:{shm}"),
                      open_transport(f"raw:{raw}"), MailboxTestTransport(mbox)]
        for transport in transports:
            agent = Agent(transport, timeout_s=5)
            vendor, protocols, version = _discover_and_version(agent)
            assert vendor.lower() == "qualcomm", transport.name
            assert QCOM in protocols and set(expected_ids) - {0x10} <= set(protocols)
            assert version == 0x10000, transport.name  # protocol.md §1.3
            for size in (0, 1, 13, 64):  # arbitrary commands end to end
                payload = bytes((i * 7 + size) & 0xFF for i in range(size))
                assert agent.call(TEST_PROTOCOL, MSG_ECHO, payload) == payload
            agent.close()
        # SIGTERM: clean shutdown, nothing left behind
        assert proc.terminate() == 0
    finally:
        proc.kill()
    assert not sock.exists() and not shm.exists()
    assert not is_mounted(raw) and not is_mounted(mbox)


def test_cli_platform_serve_and_probe_over_unix(short_tmp: Path) -> None:
    """`memlat platform serve --unix` then the agent's full probe over the socket."""
    from memlat.agent.session import open_session

    sock = short_tmp / "x.sock"
    proc = subprocess.Popen([sys.executable, "-m", "memlat", "platform", "serve", "--unix",
                             str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        session = open_session(soc="x1e80100", transport=f"unix:{sock}")
        session.agent.timeout_s = 5
        session.probe()
        log = session.agent.log
        session.close()
        assert log[0].protocol_id == 0x10 and log[0].message_id == 0x0
        qcom = [e for e in log if e.protocol_id == QCOM]
        assert qcom[0].message_id == 0x0 and qcom[0].reply == (0x10000).to_bytes(4, "little")
        assert len(qcom) > 20 and all(e.status == 0 for e in qcom)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
        stderr = proc.stderr.read() if proc.stderr else ""
        assert "id=0 ch=10 pt=80 t=CMND msg_id=00 seq=" in stderr
        assert "t=RESP msg_id=00" in stderr and "pyld=00000100" in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not sock.exists()
