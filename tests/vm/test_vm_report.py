"""`memlat vm run`'s reading of the guest console, on a console captured from a real boot
(tests/vm/golden/guest-console.log: kernel 6.12.95 under QEMU 10.0.2 against the emulated
x1e80100 CPUCP)."""

from __future__ import annotations

from pathlib import Path

from memlat.vm.run import VmResult, compare_replies, parse_line, reference_probe

CONSOLE = Path(__file__).parent / "golden" / "guest-console.log"
REFERENCE = reference_probe("x1e80100")


def _result(lines: list[str]) -> VmResult:
    result = VmResult()
    for line in lines:
        result.console.append(line)
        if parse_line(result, line, 1.5):
            break
    compare_replies(result, REFERENCE)
    return result


def test_captured_boot_reads_as_qualcomm_with_protocol_0x80_and_identical_replies() -> None:
    result = _result(CONSOLE.read_text().splitlines())
    d = result.discovery()
    assert (d["vendor"], d["sub_vendor"], d["protocol_version"]) == ("Qualcomm", "CPUCP", "2.0")
    assert d["protocols_found"] == 1 and d["agents"] == 1
    assert d["dt_protocols_implemented"] == [0x80]
    assert d["raw_list_protocols"] == [0x80]
    assert result.transport["type"] == "arm,scmi-virtio"
    assert result.sysfs["vendor_id"] == "Qualcomm"
    assert result.all_same and len(result.compared) == 78 and len(result.qcom_compared) == 71
    assert result.rtt is not None and result.rtt[0] == 200 and result.rtt_us is not None
    assert result.boot_s == 1.5 and result.guest_up_s is not None
    report = "\n".join(result.report())
    assert "78/78 replies identical" in report and "71/71 QCOM 0x80" in report


def test_a_changed_reply_or_a_missing_one_is_reported_by_index() -> None:
    lines = CONSOLE.read_text().splitlines()
    out = []
    for line in lines:
        if line.startswith("MEMLAT-REPLY 0010.bin "):
            tag, name, ns, hexed = line.split()
            line = f"{tag} {name} {ns} {hexed[:8]}feffffff"  # NOT_SUPPORTED instead
        if line.startswith("MEMLAT-REPLY 0078.bin "):
            continue
        out.append(line)
    result = _result(out)
    assert not result.all_same
    assert [c.index for c in result.compared if not c.same] == [10, 78]
    report = "\n".join(result.report())
    assert "76/78 replies identical" in report
    assert "message 78: expected" in report and "got nothing" in report


def test_not_implemented_protocol_lines_are_read_from_dmesg() -> None:
    lines = [line for line in CONSOLE.read_text().splitlines()
             if not line.startswith("MEMLAT-REPLY")]
    i = next(n for n, line in enumerate(lines) if "Found 1 protocol(s)" in line)
    lines.insert(i, "MEMLAT-DMESG [    0.3] arm-scmi arm-scmi.0.auto: SCMI protocol 128 "
                    "not implemented")
    d = _result(lines).discovery()
    assert d["dt_protocols_implemented"] == [] and d["dt_protocols_not_implemented"] == [128]
    assert "raw_list_protocols" not in d  # no raw replies in this console
