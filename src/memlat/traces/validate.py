"""Validation of a trace table (decisions.md §3) with errors that name file, column, row.

`validate_frame` turns whatever a reader produced (strings from CSV, any numeric dtype
from Parquet) into a clean frame: window, cpu, dt_us as Int64 and ev<N> as UInt64, or
raises `ConfigError(source=file, location="column X, row N")`. Rows are counted from 1
and do not include the CSV header line. Columns other than window, cpu, dt_us and
ev<N> are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import polars as pl

from memlat.errors import ConfigError
from memlat.governor.spec import N_COUNTERS

KEY_COLUMNS = ("window", "cpu", "dt_us")
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


def _first_row(mask: pl.Series) -> int:
    """1-based index of the first True in mask."""
    return int(mask.arg_true()[0]) + 1


def _to_int(col: pl.Series, dtype: type[pl.DataType], source: str) -> pl.Series:
    """Cast one column to an integer dtype, refusing empty, non-integer or negative cells."""
    name = col.name
    if col.null_count():
        row = _first_row(col.is_null())
        raise ConfigError("empty cell", source=source, location=f"column {name}, row {row}")
    if col.dtype == pl.String:
        text = col.str.strip_chars()
        cast = text.cast(dtype, strict=False)
        bad = cast.is_null()
        if bad.any():
            row = _first_row(bad)
            value = text[row - 1]
            negative = re.fullmatch(r"-\d+", value) is not None
            what = "is negative" if negative else "is not a non-negative integer"
            raise ConfigError(f"value {value!r} {what}", source=source,
                              location=f"column {name}, row {row}")
        return cast
    if col.dtype.is_integer():
        if col.dtype.is_signed_integer():
            neg = col < 0
            if neg.any():
                row = _first_row(neg)
                raise ConfigError(f"value {col[row - 1]} is negative", source=source,
                                  location=f"column {name}, row {row}")
        return col.cast(dtype)
    if col.dtype.is_float():
        frac = ~col.is_finite() | (col != col.floor())
        if frac.any():
            row = _first_row(frac)
            raise ConfigError(f"value {col[row - 1]} is not an integer", source=source,
                              location=f"column {name}, row {row}")
        neg = col < 0
        if neg.any():
            row = _first_row(neg)
            raise ConfigError(f"value {col[row - 1]} is negative", source=source,
                              location=f"column {name}, row {row}")
        return col.cast(dtype)
    raise ConfigError(f"type {col.dtype} is not an integer type", source=source,
                      location=f"column {name}")


def validate_frame(df: pl.DataFrame, *, source: str, ncpus: int | None = None,
                   required_counters: Iterable[int] = ()) -> pl.DataFrame:
    """Check a trace table and return it with clean integer columns.

    ncpus: when given, a cpu >= ncpus is an error. required_counters: counter ids whose
    ev<N> column must be present (for example the events a governor config reads).
    """
    for name in KEY_COLUMNS:
        if name not in df.columns:
            raise ConfigError("missing column (a trace needs window, cpu, dt_us, ev<N>)",
                              source=source, location=f"column {name}")
    evs = counter_columns(df.columns, source)
    for k in sorted(set(required_counters)):
        if k not in evs:
            raise ConfigError(f"missing column: the governor configuration reads counter {k}",
                              source=source, location=f"column {counter_column(k)}")
    cols = [_to_int(df[n], pl.Int64, source) for n in KEY_COLUMNS]
    cols += [_to_int(df[evs[k]], pl.UInt64, source).alias(counter_column(k))
             for k in sorted(evs)]
    out = pl.DataFrame(cols)

    window = out["window"]
    back = window.diff() < 0
    if back.any():
        row = _first_row(back.fill_null(False))
        raise ConfigError(f"windows out of order: window {window[row - 1]} follows window "
                          f"{window[row - 2]}", source=source,
                          location=f"column window, row {row}")
    if ncpus is not None:
        over = out["cpu"] >= ncpus
        if over.any():
            row = _first_row(over)
            raise ConfigError(f"unknown CPU {out['cpu'][row - 1]}: the platform has {ncpus} "
                              f"CPUs (0..{ncpus - 1})", source=source,
                              location=f"column cpu, row {row}")
    dup = out.select(pl.struct("window", "cpu").is_duplicated())
    if dup.to_series().any():
        row = _first_row(out.select(pl.struct("window", "cpu").is_first_distinct().not_())
                         .to_series())
        raise ConfigError(f"CPU {out['cpu'][row - 1]} appears twice in window "
                          f"{window[row - 1]}", source=source, location=f"column cpu, row {row}")
    first_dt = out.select(pl.col("dt_us").first().over("window")).to_series()
    odd = out["dt_us"] != first_dt
    if odd.any():
        row = _first_row(odd)
        raise ConfigError(f"inconsistent dt_us in window {window[row - 1]}: "
                          f"{out['dt_us'][row - 1]} here, {first_dt[row - 1]} on its first row",
                          source=source, location=f"column dt_us, row {row}")
    return out
