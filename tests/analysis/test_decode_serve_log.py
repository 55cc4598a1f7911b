"""`memlat decode` of memlat's own `platform serve` log, from a real serve process."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memlat.cli import app

runner = CliRunner()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory (unix socket paths are limited to 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="mlat", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_serve_log_decodes_checks_and_rebuilds(short_dir: Path) -> None:
    sock, log = short_dir / "s.sock", short_dir / "serve.log"
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "memlat", "platform", "serve",
                                 "--unix", str(sock)], stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 30
            while not sock.exists():
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline
                time.sleep(0.05)
            probed = runner.invoke(app, ["probe", "--soc", "x1e80100", "--transport",
                                         f"unix:{sock}", "--json"])
            assert probed.exit_code == 0, probed.output
            proc.send_signal(signal.SIGINT)
            assert proc.wait(15) == 130  # Ctrl-C (docs/cli.md)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    res = runner.invoke(app, ["decode", str(log), "--json", "--check"])
    assert res.exit_code == 0, res.output
    objs = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(objs) == 78 and all(o["kind"] == "command" for o in objs)
    assert all(o["t_s"] is None and o["latency_us"] is None for o in objs)  # no timestamps
    qcom = [o for o in objs if o["protocol"] == "qcom" and "param" in o]
    sent = [json.loads(line) for line in probed.stdout.splitlines()]
    assert [o["request"]["fields"]["param_id"] for o in qcom] == [
        int.from_bytes(bytes.fromhex(s["payload"])[12:16], "little") for s in sent]
    assert [o["seq"] for o in qcom] == [s["token"] for s in sent]
    profile = short_dir / "p.yaml"
    rebuilt = runner.invoke(app, ["decode", str(log), "--profile-out", str(profile)])
    assert rebuilt.exit_code == 0, rebuilt.output
    again = runner.invoke(app, ["probe", "--soc-file", str(profile), "--json"])
    assert again.stdout == probed.stdout
