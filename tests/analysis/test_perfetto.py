"""`--perfetto` traces parsed back with the perfetto package's own protos."""

from __future__ import annotations

import csv
import itertools
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import Trace, TrackEvent
from typer.testing import CliRunner

from memlat.analysis.compare import Job, run_jobs
from memlat.analysis.decode.synth import probe_exchanges
from memlat.cli import app
from memlat.sim.batch import select_workloads

REPO = Path(__file__).parents[2]
EXAMPLE = REPO / "src" / "memlat" / "examples" / "x1e80100-boot.trace"
runner = CliRunner()


class Parsed:
    """Tracks, counters and slices of a trace file, by process name and track name."""

    def __init__(self, path: Path) -> None:
        trace = Trace.FromString(path.read_bytes())
        self.names: dict[int, str] = {}
        self.parent: dict[int, int] = {}
        self.process: dict[int, str] = {}
        self.counters: dict[int, list[tuple[int, float]]] = defaultdict(list)
        self.slices: dict[int, list[tuple[int, str, dict[str, Any]]]] = defaultdict(list)
        for packet in trace.packet:
            if packet.HasField("track_descriptor"):
                td = packet.track_descriptor
                if td.HasField("process"):
                    self.process[td.uuid] = td.process.process_name
                else:
                    self.names[td.uuid] = td.name
                    self.parent[td.uuid] = td.parent_uuid
            elif packet.HasField("track_event"):
                ev = packet.track_event
                if ev.type == TrackEvent.TYPE_COUNTER:
                    self.counters[ev.track_uuid].append((packet.timestamp,
                                                         ev.double_counter_value))
                elif ev.type == TrackEvent.TYPE_SLICE_BEGIN:
                    args = {a.name: (a.string_value or a.int_value) for a in ev.debug_annotations}
                    self.slices[ev.track_uuid].append((packet.timestamp, ev.name, args))

    def tracks(self, process: str) -> dict[str, int]:
        """Track name -> uuid for the tracks of one process."""
        (puuid,) = [u for u, n in self.process.items() if n == process]
        return {self.names[u]: u for u, p in self.parent.items() if p == puuid}

    def value_at(self, track: int, t_ns: int) -> float:
        """The counter's value at t_ns (last sample at or before it)."""
        samples = [v for t, v in self.counters[track] if t <= t_ns]
        return samples[-1]


def test_run_perfetto_votes_and_tracks(tmp_path: Path) -> None:
    out = tmp_path / "run.pftrace"
    args = ["run", "--only", "membench", "--duration", "0.2", "--policies",
            "memlat,performance", "--jobs", "1", "--out", str(tmp_path / "report"),
            "--perfetto", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    parsed = Parsed(out)
    (workload,) = select_workloads(None, "membench", 0.2)
    ((results, _),) = run_jobs([Job(workload, ("memlat", "performance"))], workers=1)
    assert sorted(parsed.process.values()) == ["membench / memlat", "membench / performance"]
    for r in results:
        tracks = parsed.tracks(f"membench / {r.policy}")
        tl = r.timeline
        assert tl is not None
        for bus, attr in (("ddr", "ddr_mhz"), ("llcc", "llcc_mhz"), ("ddr_qos", "ddr_qos")):
            got = [parsed.value_at(tracks[f"{bus} vote"], round(t * 1e9))
                   for t in tl.t_s.tolist()]
            assert got == getattr(tl, attr).tolist(), (r.policy, bus)
        phases = [name for _, name, _ in parsed.slices[tracks["workload phases"]]]
        assert phases == [name for name, _, _ in tl.phase_spans()]
    memlat = parsed.tracks("membench / memlat")
    assert {f"cpu{c} IPM" for c in range(12)} <= set(memlat)
    assert {f"cpu{c} effective MHz" for c in range(12)} <= set(memlat)
    scmi = parsed.slices[memlat["SCMI agent"]]
    probe = probe_exchanges("x1e80100")
    assert len(scmi) == len(probe) == 78
    assert [s[1] for s in scmi[-3:]] == ["SAMPLE_MS", "SET_EFFECTIVE_FREQ_METHOD",
                                         "START_TIMER"]
    assert scmi[-1][2]["status"] == "SUCCESS (0)"
    perf = parsed.tracks("membench / performance")
    assert "SCMI agent" not in perf and "cpu0 IPM" not in perf


def test_replay_perfetto_matches_the_csv(tmp_path: Path) -> None:
    trace = REPO / "tests" / "governor" / "data" / "perf_stat_sample.csv"
    out_csv, out_pf = tmp_path / "votes.csv", tmp_path / "replay.pftrace"
    res = runner.invoke(app, ["replay", "--soc", "x1e80100", "--trace", str(trace),
                              "--out", str(out_csv), "--perfetto", str(out_pf)])
    assert res.exit_code == 0, res.output
    parsed = Parsed(out_pf)
    tracks = parsed.tracks("replay x1e80100")
    with out_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    windows = sorted({int(r["window"]) for r in rows})
    for group in ("ddr", "llcc", "ddr_qos"):
        want = [int(r["khz"]) for r in rows if r["group"] == group]
        samples = parsed.counters[tracks[f"{group} vote"]]
        times = sorted({t for t, _ in samples} | {0})
        assert len(want) == len(windows)
        assert samples[0][1] == want[0]
        assert [v for _, v in samples] == [want[0]] + [
            b for a, b in itertools.pairwise(want) if a != b]
        assert times[0] == 0
    assert "cpu0 effective MHz" in tracks


def test_decode_perfetto(tmp_path: Path) -> None:
    out = tmp_path / "decode.pftrace"
    res = runner.invoke(app, ["decode", str(EXAMPLE), "--perfetto", str(out)])
    assert res.exit_code == 0, res.output
    parsed = Parsed(out)
    agent = parsed.tracks("SCMI instance 0")
    slices = parsed.slices[agent["SCMI agent"]]
    assert len(slices) == 81 and len(parsed.slices[agent["SCMI notifications"]]) == 1
    first = slices[0]
    assert first[0] == 2_500_002_000 and first[1] == "base/PROTOCOL_VERSION"
    assert first[2]["status"] == "SUCCESS" and first[2]["response"] == "version=2.0"
    devfreq = parsed.tracks("devfreq")
    assert set(devfreq) == {"ddr freq", "llcc freq", "ddr-qos freq"}
    ddr = parsed.counters[devfreq["ddr freq"]]
    assert ddr[0][1] == 4_224_000_000 and len(ddr) == 51
    counters = parsed.tracks("counters")  # the counter trace next to the example
    assert "cpu11 IPM" in counters
    ipm = np.array([v for _, v in parsed.counters[counters["cpu0 IPM"]]])
    assert len(ipm) == 100 and (ipm >= 0).all()


def test_perfetto_never_overwrites_other_files(tmp_path: Path) -> None:
    mine = tmp_path / "notes.txt"
    mine.write_text("mine\n")
    res = runner.invoke(app, ["decode", str(EXAMPLE), "--perfetto", str(mine)])
    assert res.exit_code == 2 and "not overwriting" in res.stderr
    assert mine.read_text() == "mine\n"
