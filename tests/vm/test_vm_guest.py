"""The real Linux kernel as the agent: boot the cached guest (built by `.ci/run` with
`memlat vm build`, or here on first use) under QEMU against the emulated x1e80100 CPUCP
served by `memlat platform serve --vhost-user`, and check what the kernel's SCMI core
discovered and that the probe sent through the guest's raw mode gets the in-process
replies byte for byte."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from memlat.scmi.message import Message
from memlat.vm.guest import build_guest, find_kernel_source
from memlat.vm.run import reference_probe

pytestmark = pytest.mark.slow


def _missing() -> str | None:
    for tool in ("qemu-system-aarch64", "aarch64-linux-gnu-gcc", "dtc"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (.ci/run installs it; docs/vm.md)"
    if not list(Path("/usr/src").glob("linux-source-*.tar.xz")):
        return "Debian's linux-source-6.12 not installed (docs/vm.md)"
    return None


def _boot(work: Path) -> dict:
    build_guest(log=lambda _s: None)  # cached by .ci/run; builds (~7 min) if not
    proc = subprocess.run([sys.executable, "-m", "memlat", "vm", "run", "--soc", "x1e80100",
                           "--json", "--rounds", "50", "--workdir", str(work)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.stdout, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    out["rc"] = proc.returncode
    return out


def test_real_kernel_discovers_the_cpucp_and_its_raw_mode_probe_matches(
        tmp_path: Path) -> None:
    """One boot (a test of its own, so pytest-xdist never boots twice)."""
    if why := _missing():
        pytest.skip(why)
    find_kernel_source()
    vm = _boot(tmp_path)
    assert vm["errors"] == [], vm["errors"]

    # -- the kernel's SCMI discovery lines --
    d = vm["discovery"]
    # base.c: "SCMI Protocol v2.0 'Qualcomm:CPUCP' Firmware version 0x..."
    assert d["vendor"] == "Qualcomm"
    assert d["protocol_version"] == "2.0"
    assert any("'Qualcomm:" in line for line in vm["dmesg"])
    # base.c (dynamic debug): one protocol besides base; the DT's protocol@80 was found
    # implemented (no "SCMI protocol 128 not implemented"), and the kernel's raw mode
    # carried a DISCOVER_LIST_PROTOCOLS reply naming 0x80
    assert d["protocols_found"] == 1
    assert d["dt_protocols_implemented"] == [0x80]
    assert d["raw_list_protocols"] == [0x80]
    assert vm["transport"]["type"] == "arm,scmi-virtio"
    assert vm["sysfs"]["vendor_id"] == "Qualcomm"

    # -- the probe through the guest's raw mode against the in-process probe --
    compared = vm["compared"]
    reference = reference_probe("x1e80100")
    assert [c["command"] for c in compared] == [c.hex() for c, _ in reference]
    qcom = [c for c in compared
            if Message.from_bytes(bytes.fromhex(c["command"])).header.protocol_id == 0x80]
    assert len(qcom) == 71  # PROTOCOL_VERSION of 0x80 + the 70-command probe sequence
    assert [c for c in compared if c["got"] != c["expected"]] == []
    assert vm["rc"] == 0
    assert vm["rtt_us"] is not None and vm["rtt_us"] > 0
