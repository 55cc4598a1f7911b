"""devfreq_frequency -> timelines, trans_stat, and the board versus memlat's governor."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from memlat.analysis.decode import decode_file, sampling_start_ns
from memlat.analysis.decode.devfreq import compare, timelines, trans_stat
from memlat.cli import app
from memlat.config.profiles import load_profile
from memlat.traces import read_trace

EXAMPLE = Path(__file__).parents[2] / "src" / "memlat" / "examples" / "x1e80100-boot.trace"
COUNTERS = EXAMPLE.with_name("x1e80100-boot.counters.csv")
runner = CliRunner()


def test_timelines_and_trans_stat() -> None:
    r = decode_file(EXAMPLE)
    tls = timelines(r.devfreq)
    assert list(tls) == ["ddr", "llcc", "ddr-qos"]
    ddr = tls["ddr"]
    assert ddr.initial_hz == 4_224_000_000 and len(ddr.t_ns) == 50
    assert ddr.at(ddr.t_ns[0] - 1) == 4_224_000_000 and ddr.at(ddr.t_ns[0]) == ddr.freq_hz[0]
    soc = load_profile("x1e80100")
    start = min(m.t_ns for m in r.messages if m.t_ns is not None)
    end = max(e.where.ts_ns for e in r.devfreq if e.where.ts_ns is not None)
    text = trans_stat(ddr, start, end, soc)
    rows = [ln for ln in text.splitlines() if re.match(r"^[ *]\s*\d+:", ln)]
    assert len(rows) == 10  # the group's 10 OPPs, Hz
    cells = [[int(x) for x in ln.split(":")[1].split()] for ln in rows]
    assert sum(sum(c[:-1]) for c in cells) == 50
    assert sum(c[-1] for c in cells) == end // 1_000_000 - start // 1_000_000
    assert text.endswith("Total transition : 50\n")
    qos = trans_stat(tls["ddr-qos"], start, end, soc)
    assert "       100:" in qos and "         1:" in qos  # synthetic level OPPs (§3.2)


def test_board_agrees_with_the_governor() -> None:
    r = decode_file(EXAMPLE)
    soc = load_profile("x1e80100")
    counters = read_trace(COUNTERS, ncpus=soc.ncpus)
    start = sampling_start_ns(r)
    assert start == 2_504_641_000  # the START_TIMER reply
    comps = compare(timelines(r.devfreq), soc, counters, start)
    assert [(c.group, c.windows, c.agree, c.first_divergence) for c in comps] == [
        ("ddr", 100, 100, None), ("llcc", 100, 100, None), ("ddr-qos", 100, 100, None)]


def test_first_divergence(tmp_path: Path) -> None:
    lines = EXAMPLE.read_text().splitlines(keepends=True)
    idx = [i for i, ln in enumerate(lines) if "dev_name=llcc" in ln][4]
    m = re.search(r"freq=(\d+)", lines[idx])
    assert m is not None
    t = float(re.search(r"(\d+\.\d+): devfreq", lines[idx]).group(1))  # type: ignore[union-attr]
    lines[idx] = lines[idx].replace(f"freq={m.group(1)} ", "freq=300000000 ", 1)
    trace = tmp_path / "board.trace"
    trace.write_text("".join(lines))
    (tmp_path / "board.counters.csv").write_text(COUNTERS.read_text())
    res = runner.invoke(app, ["decode", str(trace), "--json"])
    assert res.exit_code == 0, res.output
    comps = {o["group"]: o for o in map(json.loads, res.stdout.splitlines())
             if o["kind"] == "devfreq-compare"}
    llcc = comps["llcc"]
    assert comps["ddr"]["agreement_pct"] == 100.0
    assert llcc["agree"] < 100 and llcc["first_divergence"]["board"] == 300000
    # the edited change took effect 150 us after its window ended (4 ms windows)
    w = llcc["first_divergence"]["window"]
    assert abs((2.504641 + (w + 1) * 0.004 + 0.000150) - t) < 1e-6
