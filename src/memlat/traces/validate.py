"""Validation of a trace table (decisions.md §3) with errors that name file, column, row.

`validate_batch` turns one batch of whatever a reader produced (strings from CSV, any
numeric dtype from Parquet) into a clean frame: window, cpu, dt_us as Int64 and ev<N>
as UInt64, or raises `ConfigError(source=file, location="column X, row N")`; a
`BatchState` carries what the next batch must continue (last window, its CPUs and
dt_us), so a file is validated in a streaming pass. `validate_frame` is one batch. Rows
are counted from 1 over the whole file and do not include the CSV header line. Columns
other than window, cpu, dt_us and ev<N> are ignored. Window numbers are dense from 0;
windows and CPU numbers are bounded (MAX_WINDOWS, MAX_CPUS, raised by the caller).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from memlat.errors import ConfigError
from memlat.governor.spec import N_COUNTERS

KEY_COLUMNS = ("window", "cpu", "dt_us")
MAX_WINDOWS = 50_000_000  # default bounds; the CLI raises them with --max-windows/--max-cpus
MAX_CPUS = 1024
_EV_RE = re.compile(r"^ev(\d+)$")


def counter_column(counter: int) -> str:
    """Column name of counter id `counter` ("ev<N>")."""
    return f"ev{counter}"


def counter_columns(columns: Iterable[str], source: str) -> dict[int, str]:
    """Map counter id -> column name for every ev<N> column; reject ids out of range."""
    found: dict[int, str] = {}
    for name in columns:
        m = _EV_RE.match(name)
        if m is None:
            continue
        k = int(m.group(1))
        if k >= N_COUNTERS:
            raise ConfigError(f"counter id {k} is out of range 0..{N_COUNTERS - 1}",
                              source=source, location=f"column {name}")
        found[k] = name
    return found


def _to_int(col: pl.Series, dtype: type[pl.DataType], source: str,
            base: int = 0) -> pl.Series:
    """Cast one column to an integer dtype, refusing empty, non-integer or negative cells.

    base: rows before this batch, so errors give the row number in the whole file.
    """
    name = col.name

    def fail(mask: pl.Series, text: str) -> ConfigError:
        i = int(mask.arg_true()[0])
        return ConfigError(text.format(value=col[i], rep=repr(col[i])), source=source,
                           location=f"column {name}, row {i + 1 + base}")

    if col.null_count():
        raise fail(col.is_null(), "empty cell")
    if col.dtype == pl.String:
        cast = col.cast(dtype, strict=False)
        bad = cast.is_null()
        if bad.any():  # perhaps only padding: try again on the stripped text
            text = col.str.strip_chars()
            cast = text.cast(dtype, strict=False)
            bad = cast.is_null()
        if bad.any():
            value = text[int(bad.arg_true()[0])]
            negative = re.fullmatch(r"-\d+", value) is not None
            what = "is negative" if negative else "is not a non-negative integer"
            raise fail(bad, f"value {value!r} {what}")
        return cast
    if col.dtype.is_integer():
        if col.dtype.is_signed_integer() and (col < 0).any():
            raise fail(col < 0, "value {value} is negative")
        return col.cast(dtype)
    if col.dtype.is_float():
        frac = ~col.is_finite() | (col != col.floor())
        if frac.any():
            raise fail(frac, "value {value} is not an integer")
        if (col < 0).any():
            raise fail(col < 0, "value {value} is negative")
        return col.cast(dtype)
    raise ConfigError(f"type {col.dtype} is not an integer type", source=source,
                      location=f"column {name}")


def check_header(columns: Iterable[str], *, source: str,
                 required_counters: Iterable[int] = ()) -> dict[int, str]:
    """Check a trace table's column names; returns counter id -> ev<N> column.

    A missing key column is named, with the closest header cell when it looks like a
    typo (`windw` for `window`), so a CSV with a bad header gets a CSV error.
    """
    cols = list(columns)
    for name in KEY_COLUMNS:
        if name not in cols:
            near = difflib.get_close_matches(name, [c for c in cols if c not in KEY_COLUMNS],
                                             n=1, cutoff=0.6)
            hint = f"; the header has {near[0]!r} (a typo?)" if near else \
                f"; the header is {','.join(cols)!r}" if cols else ""
            raise ConfigError(f"missing column {name!r} (a trace needs window, cpu, dt_us, "
                              f"ev<N>){hint}", source=source, location=f"column {name}")
    evs = counter_columns(cols, source)
    for k in sorted(set(required_counters)):
        if k not in evs:
            raise ConfigError(f"missing column: the governor configuration reads counter {k}",
                              source=source, location=f"column {counter_column(k)}")
    return evs


@dataclass
class BatchState:
    """What validation carries from one batch of rows to the next (streamed reading).

    rows: rows seen so far; window: the last window (-1 before the first row);
    window_cpus / window_dt: the CPUs and dt_us of that window so far; max_cpu: the
    highest CPU seen (-1: none).
    """

    rows: int = 0
    window: int = -1
    window_cpus: set[int] = field(default_factory=set)
    window_dt: int = 0
    max_cpu: int = -1


def validate_batch(df: pl.DataFrame, state: BatchState, *, source: str,
                   ncpus: int | None = None, max_cpus: int = MAX_CPUS,
                   max_windows: int = MAX_WINDOWS,
                   required_counters: Iterable[int] = ()) -> pl.DataFrame:
    """Validate one batch of rows that follows the rows `state` describes; update state.

    Window numbers are dense: the first row is window 0 and each row's window equals
    the previous row's or is one more; a window >= max_windows or a CPU >= max_cpus
    (or >= ncpus when given) is refused with the limit named. Row numbers in errors
    count from 1 over the whole file (the CSV header not included).
    """
    evs = check_header(df.columns, source=source, required_counters=required_counters)
    base = state.rows

    def at(col: str, i: int) -> str:
        return f"column {col}, row {base + i + 1}"

    cols = [_to_int(df[n], pl.Int64, source, base) for n in KEY_COLUMNS]
    cols += [_to_int(df[evs[k]], pl.UInt64, source, base).alias(counter_column(k))
             for k in sorted(evs)]
    out = pl.DataFrame(cols)
    if out.height == 0:
        return out
    w = out["window"].to_numpy()
    c = out["cpu"].to_numpy()
    dt = out["dt_us"].to_numpy()
    step = np.diff(w, prepend=state.window)
    bad = np.flatnonzero((step < 0) | (step > 1))
    if bad.size:
        i = int(bad[0])
        prev = state.window if i == 0 else int(w[i - 1])
        if w[i] < prev:
            why = f"windows out of order: window {w[i]} follows window {prev}"
        elif prev < 0:
            why = (f"the first window is {w[i]}: window numbers start at 0 and count up by "
                   "1 (a window where every CPU was idle is still written, with zero deltas)")
        else:
            why = (f"window {w[i]} follows window {prev}: window numbers count up by 1 "
                   "(a window where every CPU was idle is still written, with zero deltas)")
        raise ConfigError(why, source=source, location=at("window", i))
    last = int(w[-1])
    if last >= max_windows:
        i = int(np.argmax(w >= max_windows))
        raise ConfigError(f"window {w[i]} exceeds the limit of {max_windows} windows "
                          "(raise it with --max-windows)", source=source,
                          location=at("window", i))
    limit, what = (ncpus, f"the platform has {ncpus} CPUs (0..{ncpus - 1})") \
        if ncpus is not None else \
        (max_cpus, f"the limit is {max_cpus} CPUs (raise it with --max-cpus)")
    if (c >= limit).any():
        i = int(np.argmax(c >= limit))
        raise ConfigError(f"unknown CPU {c[i]}: {what}", source=source, location=at("cpu", i))
    # windows are runs (dense, non-decreasing): run starts, and each row's run start
    starts = np.flatnonzero(step != 0)
    if starts.size == 0 or starts[0] != 0:
        starts = np.concatenate(([0], starts))
    run_of = np.repeat(np.arange(starts.size), np.diff(np.append(starts, len(w))))
    first_dt = dt[starts][run_of]
    if w[0] == state.window:  # the first run continues the previous batch's last window
        first_dt[run_of == 0] = state.window_dt
    key = w.astype(np.int64) * limit + c
    dup = np.zeros(len(w), bool)
    ordered = np.sort(key, kind="stable")
    if (ordered[1:] == ordered[:-1]).any():
        order = np.argsort(key, kind="stable")
        later = np.zeros(len(key), bool)
        later[1:] = ordered[1:] == ordered[:-1]
        dup[order[later]] = True
    if w[0] == state.window and state.window_cpus:
        dup |= (w == state.window) & np.isin(c, sorted(state.window_cpus))
    if dup.any():
        i = int(np.argmax(dup))
        raise ConfigError(f"CPU {c[i]} appears twice in window {w[i]}", source=source,
                          location=at("cpu", i))
    odd = dt != first_dt
    if odd.any():
        i = int(np.argmax(odd))
        raise ConfigError(f"inconsistent dt_us in window {w[i]}: {dt[i]} here, "
                          f"{first_dt[i]} on its first row", source=source,
                          location=at("dt_us", i))
    if last != state.window:
        state.window_cpus = set()
        state.window_dt = int(dt[starts[-1]])
    state.window_cpus |= set(c[int(starts[-1]):].tolist())
    state.window = last
    state.max_cpu = max(state.max_cpu, int(c.max()))
    state.rows += out.height
    return out


def validate_frame(df: pl.DataFrame, *, source: str, ncpus: int | None = None,
                   required_counters: Iterable[int] = ()) -> pl.DataFrame:
    """Check a whole trace table (one batch) and return it with clean integer columns.

    ncpus: when given, a cpu >= ncpus is an error. required_counters: counter ids whose
    ev<N> column must be present (for example the events a governor config reads).
    """
    return validate_batch(df, BatchState(), source=source, ncpus=ncpus,
                          required_counters=required_counters)
