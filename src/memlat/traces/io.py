"""Counter traces on disk: CSV, Parquet and perf stat output (decisions.md §3).

One row per window per CPU with columns window, cpu, dt_us, ev<N>. A CPU without a row
in a window was idle: all its deltas are 0 and its dt_us is the window's. Window
numbers are dense: they start at 0 and count up by 1 (a window where every CPU was idle
is written with zero deltas), so the size of a trace is bounded by its rows.

Files are read in batches (polars `scan_csv(...).collect_batches()`, Parquet row
groups), each validated as it arrives, so memory follows the windows kept, not the file:
`check_trace` keeps nothing but counts; `load_trace` fills the dense arrays. The format
is given (`fmt="csv"|"parquet"|"perf"`) or detected, and `TraceInfo` says what was
detected and why, and which perf rows were skipped, by kind.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from memlat.errors import ConfigError
from memlat.governor.spec import N_COUNTERS, CounterTrace
from memlat.traces.perf import PerfReport, parse_perf
from memlat.traces.validate import (
    KEY_COLUMNS,
    MAX_CPUS,
    MAX_WINDOWS,
    BatchState,
    counter_column,
    validate_batch,
)

# columns written even when all zero: the counters the upstream profiles read (§3)
STANDARD_COUNTERS = (0, 1, 2, 3, 5)
PARQUET_SUFFIXES = (".parquet", ".pq")
FORMATS = ("auto", "csv", "parquet", "perf")
BATCH_ROWS = 1 << 16  # rows per streamed batch (64 Ki: ~340 MB peak checking a 1 GB CSV)
_PERF_TIME_RE = re.compile(r"^\s*\d+\.\d{9}\s*(,|$)")


@dataclass
class TraceInfo:
    """What reading a trace found: format (and why), shape, skipped perf rows by kind."""

    source: str
    format: str
    reason: str
    rows: int = 0
    windows: int = 0
    ncpus: int = 0
    counters: tuple[int, ...] = ()
    perf: PerfReport | None = None

    def describe(self) -> str:
        """Lines for the CLI: the format and the reason, then the perf report if any."""
        lines = [f"{self.source}: read as {self.format} ({self.reason})"]
        if self.perf is not None:
            lines.append(f"{self.source}: {self.perf.describe()}")
        return "\n".join(lines)


@dataclass
class _Builder:
    """Accumulates validated batches into dense per-batch blocks (or only counts)."""

    source: str
    ncpus: int | None
    max_cpus: int
    max_windows: int
    required: tuple[int, ...]
    dense: bool
    state: BatchState = field(default_factory=BatchState)
    counters: set[int] = field(default_factory=set)
    blocks: list[tuple[int, np.ndarray, np.ndarray]] = field(default_factory=list)

    def add(self, df: pl.DataFrame) -> None:
        clean = validate_batch(df, self.state, source=self.source, ncpus=self.ncpus,
                               max_cpus=self.max_cpus, max_windows=self.max_windows,
                               required_counters=self.required)
        evs = [int(c[2:]) for c in clean.columns if c.startswith("ev")]
        self.counters.update(evs)
        if not self.dense or clean.height == 0:
            return
        w = clean["window"].to_numpy()
        c = clean["cpu"].to_numpy()
        w0 = int(w[0])
        n_win = int(w[-1]) - w0 + 1
        n_cpu = int(c.max()) + 1
        deltas = np.zeros((n_win, n_cpu, N_COUNTERS), np.uint64)
        for k in evs:
            deltas[w - w0, c, k] = clean[counter_column(k)].to_numpy()
        win_dt = np.zeros(n_win, np.int64)
        win_dt[w - w0] = clean["dt_us"].to_numpy()
        # a window split over two batches gets a block in each; trace() ORs them (no
        # (window, cpu) appears twice, so the cells do not overlap)
        self.blocks.append((w0, deltas, win_dt))

    def finish(self) -> tuple[int, int]:
        """(windows, ncpus); refuses a trace without rows."""
        if self.state.rows == 0:
            raise ConfigError("no windows: the trace has no rows", source=self.source)
        windows = self.state.window + 1
        ncpus = self.ncpus if self.ncpus is not None else self.state.max_cpu + 1
        return windows, ncpus

    def trace(self) -> CounterTrace:
        windows, ncpus = self.finish()
        deltas = np.zeros((windows, ncpus, N_COUNTERS), np.uint64)
        win_dt = np.zeros(windows, np.int64)
        while self.blocks:
            w0, d, dt = self.blocks.pop(0)
            deltas[w0:w0 + d.shape[0], :d.shape[1]] |= d
            win_dt[w0:w0 + len(dt)] = dt
        dt_us = np.repeat(win_dt[:, None], ncpus, axis=1)
        return CounterTrace(dt_us=dt_us, deltas=deltas)


def frame_to_trace(df: pl.DataFrame, *, source: str = "<frame>", ncpus: int | None = None,
                   required_counters: Iterable[int] = (), max_cpus: int = MAX_CPUS,
                   max_windows: int = MAX_WINDOWS) -> CounterTrace:
    """Validate a trace table and build the dense CounterTrace.

    ncpus: CPU count of the result (default: highest cpu + 1); a cpu >= ncpus is refused.
    A table without rows is refused ("no windows").
    """
    b = _Builder(source, ncpus, max_cpus, max_windows, tuple(required_counters), dense=True)
    b.add(df)
    return b.trace()


def trace_to_frame(trace: CounterTrace, *, counters: Iterable[int] | None = None,
                   source: str = "<trace>") -> pl.DataFrame:
    """The table form of a trace: every window x CPU row, in window then CPU order.

    counters: ev<N> columns to write (default: the standard ids plus every counter that
    is nonzero somewhere). The file format has one dt_us per window, so a trace whose
    CPUs disagree on dt_us within a window is refused.
    """
    dt = np.asarray(trace.dt_us, np.int64)
    if dt.size and (dt != dt[:, :1]).any():
        w = int(np.argwhere((dt != dt[:, :1]).any(axis=1))[0, 0])
        raise ConfigError(f"CPUs disagree on dt_us in window {w}; the trace format has one "
                          "window length per window", source=source, location="dt_us")
    if (dt < 0).any():
        raise ConfigError("negative dt_us", source=source, location="dt_us")
    deltas = np.asarray(trace.deltas, np.uint64)
    if counters is None:
        used = np.flatnonzero(deltas.reshape(-1, N_COUNTERS).any(axis=0)).tolist()
        counters = sorted(set(STANDARD_COUNTERS) | set(used))
    n_win, n_cpu = trace.windows, trace.ncpus
    data: dict[str, np.ndarray] = {
        "window": np.repeat(np.arange(n_win, dtype=np.int64), n_cpu),
        "cpu": np.tile(np.arange(n_cpu, dtype=np.int64), n_win),
        "dt_us": dt.reshape(-1),
    }
    for k in sorted(set(counters)):
        data[counter_column(k)] = deltas[:, :, k].reshape(-1)
    return pl.DataFrame(data, schema={**{n: pl.Int64 for n in KEY_COLUMNS},
                                      **{counter_column(k): pl.UInt64 for k in counters}})


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in PARQUET_SUFFIXES


def detect_format(path: str | Path) -> tuple[str, str]:
    """(format, reason): parquet by suffix; perf when the first data line starts with an
    interval timestamp (`%lu.%09lu`, perf's prepare_interval) or `summary`; else csv.

    Comment lines (`#`) and blank lines are passed over.
    """
    p = Path(path)
    if _is_parquet(p):
        return "parquet", f"suffix {p.suffix}"
    try:
        with p.open(encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh, start=1):
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                if _PERF_TIME_RE.match(text) or text.split(",")[0].strip() == "summary":
                    return "perf", f"line {n} starts with a perf interval timestamp"
                return "csv", f"line {n} is a header, not a perf interval timestamp"
    except OSError as exc:
        raise ConfigError(f"cannot read trace: {exc.strerror}", source=str(p)) from None
    return "empty", "no line other than comments and blank lines"


def _batches(path: Path, fmt: str, source: str) -> Iterator[pl.DataFrame]:
    """The table in batches of at most BATCH_ROWS rows (CSV cells as strings)."""
    try:
        if fmt == "parquet":
            lf = pl.scan_parquet(path)
        else:
            lf = pl.scan_csv(path, infer_schema=False, comment_prefix="#")
        schema = lf.collect_schema()
        empty = True
        for batch in lf.collect_batches(chunk_size=BATCH_ROWS):
            empty = False
            yield batch
        if empty:
            yield pl.DataFrame(schema=schema)
    except pl.exceptions.NoDataError:
        raise ConfigError("no windows: the file is empty", source=source) from None
    except (OSError, pl.exceptions.PolarsError) as exc:
        what = "Parquet" if fmt == "parquet" else "CSV"
        raise ConfigError(f"cannot read trace as {what}: {str(exc).splitlines()[0]}",
                          source=source) from exc


def read_frame(path: str | Path) -> pl.DataFrame:
    """Read a CSV or Parquet trace table without interpreting it (CSV cells as strings)."""
    p = Path(path)
    fmt = "parquet" if _is_parquet(p) else "csv"
    return pl.concat(list(_batches(p, fmt, str(p))), how="vertical")


def _read(path: str | Path, *, dense: bool, fmt: str, ncpus: int | None,
          required_counters: Iterable[int], perf_events: dict[str, int] | None,
          ignore_unknown_events: bool, max_cpus: int,
          max_windows: int) -> tuple[CounterTrace | None, TraceInfo]:
    p = Path(path)
    source = str(p)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown trace format {fmt!r}; use one of {', '.join(FORMATS)}",
                          source=source)
    if not p.is_file():
        raise ConfigError("no such trace file", source=source)
    if fmt == "auto":
        fmt, reason = detect_format(p)
        if fmt == "empty":
            raise ConfigError(f"no windows: {reason}", source=source)
    else:
        reason = "--format given"
    info = TraceInfo(source, fmt, reason)
    b = _Builder(source, ncpus, max_cpus, max_windows, tuple(required_counters), dense)
    if fmt == "perf":
        try:
            with p.open(encoding="utf-8", errors="replace", newline="") as fh:
                frame, info.perf = parse_perf(fh, source=source, events=perf_events,
                                              ignore_unknown=ignore_unknown_events,
                                              ncpus=ncpus, max_cpus=max_cpus)
        except OSError as exc:
            raise ConfigError(f"cannot read trace: {exc.strerror}", source=source) from None
        if frame.height == 0:
            raise ConfigError(f"no windows: no counter rows ({info.perf.describe()})",
                              source=source)
        b.add(frame)
    else:
        for batch in _batches(p, fmt, source):
            b.add(batch)
    info.windows, info.ncpus = b.finish()
    info.rows = b.state.rows
    info.counters = tuple(sorted(b.counters))
    return (b.trace() if dense else None), info


def load_trace(path: str | Path, *, fmt: str = "auto", ncpus: int | None = None,
               required_counters: Iterable[int] = (),
               perf_events: dict[str, int] | None = None,
               ignore_unknown_events: bool = False, max_cpus: int = MAX_CPUS,
               max_windows: int = MAX_WINDOWS) -> tuple[CounterTrace, TraceInfo]:
    """Read a trace (CSV, Parquet or `perf stat -I -x, -A`) and say what was read.

    fmt: "auto" (detect_format) or "csv", "parquet", "perf". perf_events extends the
    perf event-name table (memlat.traces.perf). Errors are ConfigErrors naming the file
    and the row/line and column; a trace without rows is "no windows".
    """
    trace, info = _read(path, dense=True, fmt=fmt, ncpus=ncpus,
                        required_counters=required_counters, perf_events=perf_events,
                        ignore_unknown_events=ignore_unknown_events, max_cpus=max_cpus,
                        max_windows=max_windows)
    assert trace is not None
    return trace, info


def check_trace(path: str | Path, *, fmt: str = "auto", ncpus: int | None = None,
                required_counters: Iterable[int] = (),
                perf_events: dict[str, int] | None = None,
                ignore_unknown_events: bool = False, max_cpus: int = MAX_CPUS,
                max_windows: int = MAX_WINDOWS) -> TraceInfo:
    """Validate a trace in a streaming pass without building it; the same errors as
    load_trace, in memory bounded by one batch (perf input: by its windows x CPUs)."""
    return _read(path, dense=False, fmt=fmt, ncpus=ncpus,
                 required_counters=required_counters, perf_events=perf_events,
                 ignore_unknown_events=ignore_unknown_events, max_cpus=max_cpus,
                 max_windows=max_windows)[1]


def read_trace(path: str | Path, *, fmt: str = "auto", ncpus: int | None = None,
               required_counters: Iterable[int] = (),
               perf_events: dict[str, int] | None = None,
               ignore_unknown_events: bool = False, max_cpus: int = MAX_CPUS,
               max_windows: int = MAX_WINDOWS) -> CounterTrace:
    """load_trace without the report."""
    return load_trace(path, fmt=fmt, ncpus=ncpus, required_counters=required_counters,
                      perf_events=perf_events, ignore_unknown_events=ignore_unknown_events,
                      max_cpus=max_cpus, max_windows=max_windows)[0]


def write_trace(trace: CounterTrace, path: str | Path, *,
                counters: Iterable[int] | None = None) -> None:
    """Write a trace as Parquet (.parquet/.pq) or CSV (anything else)."""
    p = Path(path)
    df = trace_to_frame(trace, counters=counters, source=str(p))
    try:
        if _is_parquet(p):
            df.write_parquet(p)
        else:
            df.write_csv(p)
    except OSError as exc:
        raise ConfigError(f"cannot write trace: {exc.strerror}", source=str(p)) from None
