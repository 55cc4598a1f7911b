"""`memlat decode --check`: traced commands replayed into an emulated CPUCP."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from memlat.analysis.decode import decode_text
from memlat.analysis.decode.check import check_trace
from memlat.analysis.decode.synth import probe_trace
from memlat.cli import app
from memlat.config.profiles import load_profile

DATA = Path(__file__).parent / "data"
EXAMPLE = Path(__file__).parents[2] / "src" / "memlat" / "examples" / "x1e80100-boot.trace"
runner = CliRunner()


def test_mixed_trace_findings() -> None:
    res = runner.invoke(app, ["decode", str(DATA / "mixed.trace"), "--check", "--json",
                              "--soc", "x1e80100"])
    assert res.exit_code == 1, res.output
    found = [json.loads(x) for x in res.stdout.splitlines()]
    found = [f for f in found if f["kind"] == "finding"]
    assert [(f["finding"], f["param"]) for f in found] == [
        ("refused", "SET_MONITOR"),
        ("after-failure", "IPM_CEIL"), ("refused", "IPM_CEIL"), ("disagree", "IPM_CEIL"),
        ("after-failure", "SAMPLE_MS"), ("refused", "SAMPLE_MS"), ("disagree", "SAMPLE_MS"),
        ("after-failure", "GET_CUR_FREQ"), ("refused", "GET_CUR_FREQ"),
        ("disagree", "GET_CUR_FREQ"),
        ("after-failure", None), ("refused", None),
    ]
    monitor = found[0]
    assert monitor["why"] == "monitor mask 0xf00 outside group mask 0xff"
    assert monitor["traced_status"] == monitor["emulated_status"] == "INVALID_PARAMETERS"
    assert found[5]["why"] == "sample_ms 0"
    assert found[6]["traced_status"] == "SUCCESS"
    assert found[6]["emulated_status"] == "INVALID_PARAMETERS"
    assert found[-1]["emulated_status"] == "PROTOCOL_ERROR"
    assert "protocol.md §3.6" in found[1]["text"]


def test_clean_boot_has_no_findings() -> None:
    res = runner.invoke(app, ["decode", str(EXAMPLE), "--check"])
    assert res.exit_code == 0, res.output
    assert ("check against an emulated x1e80100 CPUCP (v8): 78 commands replayed, 3 of "
            "other protocols not emulated; no findings") in res.stdout


def test_v8_carrying_on_is_a_finding() -> None:
    text = probe_trace("x1e80100")
    resp = "t=RESP msg_id=10 seq=000C s=0 pyld="
    assert text.count(resp) == 1  # IPM_CEIL of ddr mon_0: a board refused it
    report = check_trace(decode_text(text.replace(resp, resp.replace("s=0", "s=-2"))),
                         load_profile("x1e80100"))
    assert not report.expected_after_failure
    kinds = [f.kind for f in report.findings]
    assert kinds[0] == "disagree" and kinds.count("disagree") == 1
    assert kinds.count("after-failure") == 70 - 5 and "refused" not in kinds


def test_rfc2024_carrying_on_is_expected(tmp_path: Path) -> None:
    text = probe_trace("x1e80100", "rfc2024")
    resp = "t=RESP msg_id=10 seq=000C s=0 pyld="
    assert text.count(resp) == 1
    trace = tmp_path / "rfc.trace"
    trace.write_text(text.replace(resp, resp.replace("s=0", "s=-2")))  # a board refused it
    report = check_trace(decode_text(trace.read_text()), load_profile("x1e80100"))
    assert report.expected_after_failure
    kinds = [f.kind for f in report.findings]
    assert kinds.count("disagree") == 1 and kinds.count("after-failure") == 59 - 5
    res = runner.invoke(app, ["decode", str(trace), "--check"])
    assert res.exit_code == 1  # the disagreement, not the RFC's carrying on
    assert "expected: the RFC driver carries on (protocol.md §4.4)" in res.stdout
