"""Perfetto traces of `memlat run` and `memlat replay` (memlat.analysis.perfetto layout).

run: one Perfetto process per (workload, policy) result with the bus vote counters
(`ddr vote` MHz, `llcc vote` MHz, `ddr_qos vote` level: the Timeline of the RunResult,
i.e. what each window ran at) and the `workload phases` slices. For the `memlat` policy
the workload is run once more keeping the per-window counters (the run is deterministic,
so its votes are the result's): they give
the per-CPU IPM and effective-frequency tracks; the SCMI probe the policy made (the
in-process agent of memlat.agent.probe, which takes no simulated time) is drawn as
slices 2 us apart before the first window.

replay: one process with a vote counter per group and the per-CPU tracks of the trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memlat.agent.offline import programmed_governor
from memlat.analysis.decode.synth import probe_exchanges
from memlat.analysis.perfetto import PerfettoTrace, add_cpu_tracks, add_scmi_slices
from memlat.governor.spec import CounterTrace, GovernorConfig
from memlat.qcom.codec import describe_request
from memlat.qcom.ids import PROTOCOL_ID as QCOM_PROTOCOL_ID
from memlat.qcom.ids import ParamId
from memlat.scmi.agent import Exchange
from memlat.scmi.status import Status
from memlat.sim.batch import worker_pool
from memlat.sim.results import RunResult
from memlat.sim.run import SimSetup, make_setup, simulate
from memlat.sim.workload import Workload

PROBE_STEP_NS = 2_000
BUS_TRACKS = (("ddr", "ddr_mhz", "MHz"), ("llcc", "llcc_mhz", "MHz"), ("ddr_qos", "ddr_qos",
                                                                        "level"))


@dataclass
class MemlatRecording:
    """What the memlat policy saw and said: counters per window and the SCMI probe."""

    workload: str
    t_ns: list[int]
    counters: CounterTrace
    config: GovernorConfig
    exchanges: list[Exchange] = field(default_factory=list)
    timeline_ddr: np.ndarray | None = None


def record_memlat(workload: Workload, setup: SimSetup) -> MemlatRecording:
    """Run `workload` under the memlat policy keeping the counter deltas of every window
    (the run is deterministic, so its votes are the result's) and the probe it made."""
    result = simulate(setup, workload, "memlat", counters=True)
    tl, counters = result.timeline, result.counters
    assert tl is not None and counters is not None
    return MemlatRecording(workload.name, [round(t * 1e9) for t in tl.t_s.tolist()],
                           counters, programmed_governor(setup.soc),
                           probe_exchanges(setup.soc), tl.ddr_mhz)


def _record_one(args: tuple[Workload, str, int]) -> MemlatRecording:
    workload, soc, seed = args
    return record_memlat(workload, make_setup(soc, seed=seed))


def record_memlat_all(workloads: Sequence[Workload], soc: str, *, seed: int = 0,
                      workers: int = 1) -> dict[str, MemlatRecording]:
    """record_memlat for every workload, in a process pool when workers > 1."""
    jobs = [(w, soc, seed) for w in workloads]
    if workers <= 1 or len(jobs) <= 1:
        recs = [_record_one(j) for j in jobs]
    else:
        with worker_pool(min(workers, len(jobs))) as pool:
            recs = list(pool.map(_record_one, jobs))
    return {r.workload: r for r in recs}


def exchange_slices(exchanges: Sequence[Exchange], start_ns: int = 0
                    ) -> list[tuple[int, int, str, dict[str, Any]]]:
    """(t0, t1, name, args) of agent exchanges drawn PROBE_STEP_NS apart from start_ns."""
    out = []
    for i, ex in enumerate(exchanges):
        t0 = start_ns + i * PROBE_STEP_NS
        if ex.protocol_id == QCOM_PROTOCOL_ID and ex.message_id >= 0x10 and len(ex.payload) >= 16:
            label = ParamId.label(int.from_bytes(ex.payload[12:16], "little"))
            text = describe_request(ex.payload)
        else:
            label = f"{ex.protocol_id:#04x}/{ex.message_id:#04x}"
            text = ex.payload.hex()
        status = ex.error if ex.status is None else Status.describe(ex.status)
        out.append((t0, t0 + PROBE_STEP_NS // 2, label,
                    {"seq": ex.token, "status": status, "request": text,
                     "reply": ex.reply.hex()}))
    return out


def add_run(trace: PerfettoTrace, result: RunResult,
            recording: MemlatRecording | None = None) -> int:
    """One run's process: votes, phases, and (memlat) per-CPU tracks and SCMI slices."""
    proc = trace.process(f"{result.workload} / {result.policy}")
    tl = result.timeline
    if tl is None:
        return proc
    t_ns = [round(t * 1e9) for t in tl.t_s.tolist()]
    for bus, attr, unit in BUS_TRACKS:
        track = trace.counter_track(f"{bus} vote", proc, unit)
        trace.counter_series(track, t_ns, getattr(tl, attr).tolist(), changes_only=True)
    phases = trace.slice_track("workload phases", proc)
    for name, t0, t1 in tl.phase_spans():
        trace.slice(phases, round(t0 * 1e9), round(t1 * 1e9), name)
    if recording is not None:
        add_cpu_tracks(trace, proc, recording.config, recording.counters, recording.t_ns)
        add_scmi_slices(trace, proc, exchange_slices(recording.exchanges))
    return proc


def write_run_trace(path: Path | str, results: Sequence[RunResult],
                    recordings: dict[str, MemlatRecording] | None = None) -> Path:
    """The whole `memlat run --perfetto` file: every result, recordings by workload."""
    trace = PerfettoTrace()
    for r in results:
        rec = (recordings or {}).get(r.workload) if r.policy == "memlat" else None
        add_run(trace, r, rec)
    return trace.write(path)


def write_replay_trace(path: Path | str, config: GovernorConfig, counters: CounterTrace,
                       votes: np.ndarray, group_names: Sequence[str], soc: str) -> Path:
    """`memlat replay --perfetto`: per-group votes and per-CPU tracks of the trace."""
    trace = PerfettoTrace()
    proc = trace.process(f"replay {soc}")
    dt = counters.dt_us[:, 0].astype(np.int64) * 1000 if counters.windows else np.zeros(0)
    t_ns = np.concatenate([[0], np.cumsum(dt)[:-1]]).astype(np.int64).tolist() if len(dt) else []
    for g, name in enumerate(group_names):
        unit = "level" if config.groups[g].is_level else "kHz"
        track = trace.counter_track(f"{name} vote", proc, unit)
        trace.counter_series(track, t_ns, votes[:, g].tolist(), changes_only=True)
    add_cpu_tracks(trace, proc, config, counters, t_ns)
    return trace.write(path)
