"""Per-window counter traces: file formats, validation, perf import, synthetic traces.

io (CSV/Parquet read and write, decisions.md §3), validate (clear errors naming file,
column and row), perf (`perf stat -I -x,` importer, every row kind), synth (seeded generator).
"""

from memlat.traces.io import (
    FORMATS,
    TraceInfo,
    check_trace,
    detect_format,
    frame_to_trace,
    load_trace,
    read_trace,
    trace_to_frame,
    write_trace,
)
from memlat.traces.perf import DEFAULT_EVENTS, PerfReport, load_event_table, parse_perf, perf_frame
from memlat.traces.synth import synth_trace

__all__ = ["DEFAULT_EVENTS", "FORMATS", "PerfReport", "TraceInfo", "check_trace",
           "detect_format", "frame_to_trace", "load_event_table", "load_trace", "parse_perf",
           "perf_frame", "read_trace", "synth_trace", "trace_to_frame", "write_trace"]
