"""Perfetto traces of runs, replays and decoded board traces (`--perfetto FILE`).

Built with the official `perfetto` Python package (optional extra `perfetto`, in
`.[all]`): its `TraceProtoBuilder` and the `TracePacket` / `TrackDescriptor` /
`TrackEvent` protos, so the file is what the Perfetto UI (ui.perfetto.dev) and
trace_processor read. Layout, one Perfetto "process" per run:

* counter tracks `<group> vote` per memory group (MHz for kHz groups, a 0/1 level for
  DDR-QoS), written on every change;
* per-CPU counter tracks `cpuN IPM` (instructions per miss, the governor's stale value
  when a window has no miss, decisions.md §2) and `cpuN effective MHz` (decisions.md §2,
  methods 0/1) per window;
* a slice track `SCMI agent` with one slice per SCMI exchange (name: protocol/message or
  QCOM param; args: seq, status, payload hex);
* a slice track `workload phases` with one slice per run of consecutive windows of a
  phase.

Timestamps are nanoseconds from the start of the run (simulated time) or of the trace
clock (decode). docs/decode.md says how to open the file.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memlat.errors import ConfigError
from memlat.governor.engine import cpu_frequency
from memlat.governor.spec import CounterTrace, GovernorConfig

try:  # the optional extra: a clear error instead of an ImportError traceback
    from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import TracePacket, TrackEvent
    from perfetto.trace_builder.proto_builder import TraceProtoBuilder
except ImportError:  # pragma: no cover - exercised only without the extra
    TraceProtoBuilder = None

SEQ_ID = 1


def _require() -> None:
    if TraceProtoBuilder is None:
        raise ConfigError("--perfetto needs the perfetto package: pip install 'memlat[perfetto]'",
                          location="--perfetto")


@dataclass
class PerfettoTrace:
    """An in-memory Perfetto trace being built; `write(path)` serialises it."""

    builder: Any = None
    _uuids: Iterator[int] = field(default_factory=lambda: itertools.count(1001))
    _pids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _first: bool = True

    def __post_init__(self) -> None:
        _require()
        if self.builder is None:
            self.builder = TraceProtoBuilder()

    def _packet(self) -> Any:
        packet = self.builder.add_packet()
        packet.trusted_packet_sequence_id = SEQ_ID
        if self._first:
            packet.sequence_flags = TracePacket.SEQ_INCREMENTAL_STATE_CLEARED
            self._first = False
        return packet

    def process(self, name: str) -> int:
        """A process track named `name`; returns its uuid."""
        uuid = next(self._uuids)
        packet = self._packet()
        packet.track_descriptor.uuid = uuid
        packet.track_descriptor.process.pid = next(self._pids)
        packet.track_descriptor.process.process_name = name
        return uuid

    def counter_track(self, name: str, parent: int, unit: str = "") -> int:
        """A counter track under `parent`."""
        uuid = next(self._uuids)
        packet = self._packet()
        td = packet.track_descriptor
        td.uuid, td.parent_uuid, td.name = uuid, parent, name
        td.counter.SetInParent()
        if unit:
            td.counter.unit_name = unit
        return uuid

    def slice_track(self, name: str, parent: int) -> int:
        """A slice track under `parent`."""
        uuid = next(self._uuids)
        packet = self._packet()
        td = packet.track_descriptor
        td.uuid, td.parent_uuid, td.name = uuid, parent, name
        return uuid

    def counter(self, track: int, t_ns: int, value: float) -> None:
        """One counter sample."""
        packet = self._packet()
        packet.timestamp = int(t_ns)
        ev = packet.track_event
        ev.type = TrackEvent.TYPE_COUNTER
        ev.track_uuid = track
        ev.double_counter_value = float(value)

    def counter_series(self, track: int, t_ns: Iterable[int], values: Iterable[float], *,
                       changes_only: bool = False) -> None:
        """Many samples; with changes_only, only the first and every change."""
        last: float | None = None
        for t, v in zip(t_ns, values, strict=True):
            if changes_only and last is not None and float(v) == last:
                continue
            self.counter(track, t, v)
            last = float(v)

    def slice(self, track: int, t0_ns: int, t1_ns: int, name: str,
              args: dict[str, Any] | None = None) -> None:
        """A complete slice [t0, t1) named `name` with debug annotations `args`."""
        packet = self._packet()
        packet.timestamp = int(t0_ns)
        ev = packet.track_event
        ev.type = TrackEvent.TYPE_SLICE_BEGIN
        ev.track_uuid = track
        ev.name = name
        for key, value in (args or {}).items():
            ann = ev.debug_annotations.add()
            ann.name = key
            if isinstance(value, bool):
                ann.bool_value = value
            elif isinstance(value, int):
                ann.int_value = value
            elif isinstance(value, float):
                ann.double_value = value
            else:
                ann.string_value = str(value)
        end = self._packet()
        end.timestamp = int(max(t1_ns, t0_ns))
        end.track_event.type = TrackEvent.TYPE_SLICE_END
        end.track_event.track_uuid = track

    def serialize(self) -> bytes:
        """The trace bytes."""
        return bytes(self.builder.serialize())

    def write(self, path: Path | str) -> Path:
        """Write the trace; errors name the file."""
        p = Path(path)
        try:
            p.write_bytes(self.serialize())
        except OSError as exc:
            raise ConfigError(f"cannot write: {exc.strerror}", source=str(p)) from exc
        return p


# ---- per-CPU series --------------------------------------------------------------------

def cpu_ipm(config: GovernorConfig, trace: CounterTrace) -> np.ndarray:
    """(W, C) instructions per miss of the first group's miss event, stale when a window
    has no miss (decisions.md §2; 0 before the first miss)."""
    miss_event = config.groups[0].miss_event if config.groups else 5
    inst = trace.deltas[:, :, config.common.inst].astype(np.uint64)
    miss = trace.deltas[:, :, miss_event].astype(np.uint64)
    raw = np.where(miss > 0, inst // np.maximum(miss, np.uint64(1)), np.uint64(0))
    raw &= np.uint64(0xFFFF_FFFF)
    out = np.zeros(raw.shape, np.int64)
    last = np.zeros(raw.shape[1], np.int64)
    for w in range(raw.shape[0]):
        has = miss[w] > 0
        last = np.where(has, raw[w].astype(np.int64), last)
        out[w] = last
    return out


def add_cpu_tracks(trace: PerfettoTrace, parent: int, config: GovernorConfig,
                   counters: CounterTrace, t_ns: Sequence[int]) -> None:
    """`cpuN IPM` and `cpuN effective MHz` per CPU, one sample per window."""
    if counters.windows == 0:
        return
    ipm = cpu_ipm(config, counters)
    eff = cpu_frequency(config, counters)
    for cpu in range(counters.ncpus):
        track = trace.counter_track(f"cpu{cpu} IPM", parent, "instructions/miss")
        trace.counter_series(track, t_ns, ipm[:, cpu].tolist())
    for cpu in range(counters.ncpus):
        track = trace.counter_track(f"cpu{cpu} effective MHz", parent, "MHz")
        trace.counter_series(track, t_ns, eff[:, cpu].tolist())


def add_scmi_slices(trace: PerfettoTrace, parent: int,
                    exchanges: Iterable[tuple[int, int, str, dict[str, Any]]],
                    name: str = "SCMI agent") -> int:
    """Slices (t0 ns, t1 ns, name, args) on a slice track; returns the track uuid."""
    track = trace.slice_track(name, parent)
    for t0, t1, label, args in exchanges:
        trace.slice(track, t0, t1, label, args)
    return track
