"""`memlat decode --perfetto`: a board trace in Perfetto (memlat.analysis.perfetto layout).

One process per SCMI instance with a slice track `SCMI agent` (each exchange from its
CMND to its RESP; args seq, status, latency, decoded request and response, line number)
and `SCMI notifications`; one process `devfreq` with a counter track `<dev> freq` (Hz)
per device; with a counter trace, the per-CPU IPM and effective-frequency tracks from the
time sampling started. Lines without timestamps (a `platform serve` log) are placed
2 us apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memlat.agent.offline import programmed_governor
from memlat.analysis.decode.devfreq import Timeline
from memlat.analysis.decode.session import DecodeResult, Message, status_name
from memlat.analysis.perfetto import PerfettoTrace, add_cpu_tracks
from memlat.config.model import SocConfig
from memlat.governor.spec import CounterTrace

UNTIMED_STEP_NS = 2_000


def _args(m: Message) -> dict[str, Any]:
    args: dict[str, Any] = {"seq": m.seq, "line": m.line}
    if m.request is not None and m.request.text:
        args["request"] = m.request.text
    if m.kind != "notification":
        args["status"] = status_name(m.status) or "no response"
        if m.response is not None and m.response.text:
            args["response"] = m.response.text
        if m.latency_us is not None:
            args["latency_us"] = m.latency_us
    if m.notes:
        args["notes"] = "; ".join(m.notes)
    return args


def write_decode_trace(path: Path | str, result: DecodeResult,
                       timelines: dict[str, Timeline] | None = None, *,
                       soc: SocConfig | None = None, counters: CounterTrace | None = None,
                       counters_start_ns: int = 0) -> Path:
    """Write the decode view of `result` (see the module docstring)."""
    trace = PerfettoTrace()
    procs: dict[int, tuple[int, int, int]] = {}
    for i, m in enumerate(result.messages):
        inst = m.instance or 0
        if inst not in procs:
            proc = trace.process(f"SCMI instance {inst}")
            procs[inst] = (proc, trace.slice_track("SCMI agent", proc),
                           trace.slice_track("SCMI notifications", proc))
        _, agent_track, noti_track = procs[inst]
        t0 = m.t_ns if m.t_ns is not None else i * UNTIMED_STEP_NS
        t1 = m.t_response_ns if m.t_response_ns is not None else t0 + UNTIMED_STEP_NS // 2
        name = m.param or f"{m.protocol}/{m.name}"
        track = noti_track if m.kind == "notification" else agent_track
        trace.slice(track, t0, t1, name, _args(m))
    if timelines:
        proc = trace.process("devfreq")
        for name, tl in timelines.items():
            track = trace.counter_track(f"{name} freq", proc, "Hz")
            if tl.t_ns:
                trace.counter(track, min(tl.t_ns[0], _first_ts(result, tl.t_ns[0])),
                              tl.initial_hz)
            trace.counter_series(track, tl.t_ns, tl.freq_hz)
    if counters is not None and soc is not None and counters.windows:
        proc = trace.process("counters")
        dt = counters.dt_us[:, 0].astype("int64") * 1000
        starts = (counters_start_ns + dt.cumsum() - dt).tolist()
        add_cpu_tracks(trace, proc, programmed_governor(soc), counters, starts)
    return trace.write(path)


def _first_ts(result: DecodeResult, default: int) -> int:
    for m in result.messages:
        if m.t_ns is not None:
            return m.t_ns
    return default
