"""Per-window counter traces: file formats, validation, perf import, synthetic traces.

io (CSV/Parquet read and write, decisions.md §3), validate (clear errors naming file,
column and row), perf (`perf stat -I -x, -A` importer), synth (seeded generator).
"""

from memlat.traces.io import frame_to_trace, read_trace, trace_to_frame, write_trace
from memlat.traces.perf import DEFAULT_EVENTS, load_event_table, perf_frame
from memlat.traces.synth import synth_trace

__all__ = ["DEFAULT_EVENTS", "frame_to_trace", "load_event_table", "perf_frame", "read_trace",
           "synth_trace", "trace_to_frame", "write_trace"]
