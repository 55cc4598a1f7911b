"""Counter traces on disk: CSV and Parquet (decisions.md §3), and auto-detection.

One row per window per CPU with columns window, cpu, dt_us, ev<N>. A CPU without a row
in a window was idle: all its deltas are 0 and its dt_us is the window's. A window
with no row at all is idle on every CPU (dt_us 0, which cannot change a decision since
all cycles are 0). `frame_to_trace` and `trace_to_frame` are pure conversions; the
read/write functions do the I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import polars as pl

from memlat.errors import ConfigError
from memlat.governor.spec import N_COUNTERS, CounterTrace
from memlat.traces.validate import KEY_COLUMNS, counter_column, counter_columns, validate_frame

# columns written even when all zero: the counters the upstream profiles read (§3)
STANDARD_COUNTERS = (0, 1, 2, 3, 5)
PARQUET_SUFFIXES = (".parquet", ".pq")


def frame_to_trace(df: pl.DataFrame, *, source: str = "<frame>", ncpus: int | None = None,
                   required_counters: Iterable[int] = ()) -> CounterTrace:
    """Validate a trace table and build the dense CounterTrace.

    ncpus: CPU count of the result (default: highest cpu + 1); a cpu >= ncpus is refused.
    """
    clean = validate_frame(df, source=source, ncpus=ncpus, required_counters=required_counters)
    w = clean["window"].to_numpy()
    c = clean["cpu"].to_numpy()
    n_win = int(w.max()) + 1 if len(w) else 0
    n_cpu = ncpus if ncpus is not None else (int(c.max()) + 1 if len(c) else 0)
    deltas = np.zeros((n_win, n_cpu, N_COUNTERS), np.uint64)
    for k, name in counter_columns(clean.columns, source).items():
        deltas[w, c, k] = clean[name].to_numpy()
    win_dt = np.zeros(n_win, np.int64)
    win_dt[w] = clean["dt_us"].to_numpy()  # consistent within a window (validated)
    dt = np.repeat(win_dt[:, None], n_cpu, axis=1)
    return CounterTrace(dt_us=dt, deltas=deltas)


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


def _looks_like_perf(path: Path) -> bool:
    """True when the first non-comment line is not our header (perf stat -x, output)."""
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            return not text.startswith("window")
    return False


def read_frame(path: str | Path) -> pl.DataFrame:
    """Read a CSV or Parquet trace table without interpreting it (CSV cells as strings)."""
    p = Path(path)
    try:
        if _is_parquet(p):
            return pl.read_parquet(p)
        return pl.read_csv(p, infer_schema=False, comment_prefix="#")
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ConfigError(f"cannot read trace: {exc}", source=str(p)) from exc


def read_trace(path: str | Path, *, ncpus: int | None = None,
               required_counters: Iterable[int] = (),
               perf_events: dict[str, int] | None = None,
               ignore_unknown_events: bool = False) -> CounterTrace:
    """Read a trace from CSV, Parquet or `perf stat -I -x, -A` output (auto-detected).

    perf_events extends the perf event-name table (see memlat.traces.perf).
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError("no such trace file", source=str(p))
    if not _is_parquet(p) and _looks_like_perf(p):
        from memlat.traces.perf import perf_frame

        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"not a trace: neither Parquet (by its suffix) nor text (byte "
                              f"offset {exc.start} is not UTF-8)", source=str(p)) from None
        except OSError as exc:
            raise ConfigError(f"cannot read trace: {exc.strerror}", source=str(p)) from None
        df = perf_frame(text, source=str(p), events=perf_events,
                        ignore_unknown=ignore_unknown_events)
    else:
        df = read_frame(p)
    return frame_to_trace(df, source=str(p), ncpus=ncpus, required_counters=required_counters)


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
        raise ConfigError(f"cannot write trace: {exc.strerror or exc}", source=str(p)) from exc
