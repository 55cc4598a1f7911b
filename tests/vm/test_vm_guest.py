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


@pytest.fixture(scope="module")
def vm_json(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if why := _missing():
        pytest.skip(why)
    find_kernel_source()
    build_guest(log=lambda _s: None)  # cached by .ci/run; builds (~7 min) if not
    work = tmp_path_factory.mktemp("vm")
    proc = subprocess.run([sys.executable, "-m", "memlat", "vm", "run", "--soc", "x1e80100",
                           "--json", "--rounds", "50", "--workdir", str(work)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.stdout, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    out["rc"] = proc.returncode
    out["work"] = work
    return out


def test_kernel_scmi_discovery_names_qualcomm_and_protocol_0x80(vm_json: dict) -> None:
    d = vm_json["discovery"]
    assert vm_json["errors"] == []
    # base.c: "SCMI Protocol v2.0 'Qualcomm:CPUCP' Firmware version 0x..."
    assert d["vendor"] == "Qualcomm"
    assert d["protocol_version"] == "2.0"
    assert any("'Qualcomm:" in line for line in vm_json["dmesg"])
    # base.c (dynamic debug): one protocol besides base; the DT's protocol@80 was found
    # implemented (no "SCMI protocol 128 not implemented"), and the kernel's raw mode
    # carried a DISCOVER_LIST_PROTOCOLS reply naming 0x80
    assert d["protocols_found"] == 1
    assert d["dt_protocols_implemented"] == [0x80]
    assert d["raw_list_protocols"] == [0x80]
    assert vm_json["transport"]["type"] == "arm,scmi-virtio"
    assert vm_json["sysfs"]["vendor_id"] == "Qualcomm"


def test_probe_through_guest_raw_mode_matches_the_in_process_probe(vm_json: dict) -> None:
    compared = vm_json["compared"]
    reference = reference_probe("x1e80100")
    assert [c["command"] for c in compared] == [c.hex() for c, _ in reference]
    qcom = [c for c in compared
            if Message.from_bytes(bytes.fromhex(c["command"])).header.protocol_id == 0x80]
    assert len(qcom) == 71  # PROTOCOL_VERSION of 0x80 + the 70-command probe sequence
    mismatched = [c for c in compared if c["got"] != c["expected"]]
    assert mismatched == []
    assert vm_json["rc"] == 0
    assert vm_json["rtt_us"] is not None and vm_json["rtt_us"] > 0
