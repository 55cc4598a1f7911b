"""Importer for `perf stat -I <ms> -x, -A` output (per-CPU interval CSV).

Each line is `time,CPU<n>,count,unit,event,run_time,run_pct,metric,metric_unit`; time is
seconds since the start, cumulative. Successive distinct timestamps become windows
0, 1, 2 ... and a window's dt_us is its timestamp minus the previous one (the first
window starts at 0). Event names map to CPUCP counter ids (decisions.md §3) through
`DEFAULT_EVENTS`, which a dict or a YAML file `{name: id}` can extend or override.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from memlat.errors import ConfigError
from memlat.governor.spec import (
    CNT_CYCLES,
    CPU_CYCLES,
    INST_RETIRED,
    L2_D_RFILL,
    N_COUNTERS,
    STALL_BACKEND_MEM,
)
from memlat.traces.validate import counter_column

# perf event name (lower case, no PMU prefix, no modifiers) -> CPUCP counter id
DEFAULT_EVENTS: dict[str, int] = {
    "cycles": CPU_CYCLES,
    "cpu-cycles": CPU_CYCLES,
    "cpu_cycles": CPU_CYCLES,
    "r11": CPU_CYCLES,  # ARM PMUv3 0x11 CPU_CYCLES
    "cnt_cycles": CNT_CYCLES,
    "instructions": INST_RETIRED,
    "inst_retired": INST_RETIRED,
    "r08": INST_RETIRED,  # 0x08 INST_RETIRED
    "r8": INST_RETIRED,
    "stall_backend_mem": STALL_BACKEND_MEM,
    "r4005": STALL_BACKEND_MEM,  # 0x4005 STALL_BACKEND_MEM (PMUv3p6)
    "l2d_cache_refill": L2_D_RFILL,
    "r17": L2_D_RFILL,  # 0x17 L2D_CACHE_REFILL
}

_NOT_COUNTED = ("<not counted>", "<not supported>")


def load_event_table(extra: dict[str, int] | str | Path | None = None) -> dict[str, int]:
    """DEFAULT_EVENTS updated with `extra`: a dict, or a YAML file holding a mapping."""
    table = dict(DEFAULT_EVENTS)
    if extra is None:
        return table
    source = "<dict>"
    data: Any = extra
    if isinstance(extra, str | Path):
        source = str(extra)
        try:
            data = yaml.safe_load(Path(extra).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read event table: {exc}", source=source) from exc
    if not isinstance(data, dict):
        raise ConfigError("event table must be a mapping of perf event name to counter id",
                          source=source)
    for name, cid in data.items():
        if isinstance(cid, bool) or not isinstance(cid, int) or not 0 <= cid < N_COUNTERS:
            raise ConfigError(f"counter id must be an integer 0..{N_COUNTERS - 1}, got {cid!r}",
                              source=source, location=str(name))
        table[normalise_event(str(name))] = cid
    return table


def normalise_event(name: str) -> str:
    """`armv8_pmuv3_0/cpu_cycles/u` or `cycles:u` -> `cpu_cycles` / `cycles`."""
    text = name.strip().lower()
    if "/" in text:
        parts = [p for p in text.split("/") if p]
        if len(parts) >= 2:
            text = parts[1]
        text = text.split(",")[0].removeprefix("event=")
    return text.split(":")[0]


def _micros(text: str, source: str, line: int) -> int:
    try:
        return int((Decimal(text) * 1_000_000).to_integral_value())
    except InvalidOperation as exc:
        raise ConfigError(f"timestamp {text!r} is not a number", source=source,
                          location=f"line {line}, field time") from exc


def perf_frame(text: str, *, source: str = "<perf>", events: dict[str, int] | None = None,
               ignore_unknown: bool = False) -> pl.DataFrame:
    """Parse perf stat interval output into a trace table (decisions.md §3 columns).

    Counts of the same counter on the same CPU and interval add up (hybrid systems list
    one line per PMU); `<not counted>` and `<not supported>` count as 0. An event name
    missing from the table is an error unless ignore_unknown.
    """
    table = load_event_table(events)
    sums: dict[tuple[int, int, int], int] = {}
    stamps: list[int] = []
    for lineno, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not fields or not "".join(fields).strip() or fields[0].lstrip().startswith("#"):
            continue
        if len(fields) < 5:
            raise ConfigError(f"expected at least 5 comma-separated fields, got {len(fields)} "
                              "(use perf stat -I <ms> -x, -A)", source=source,
                              location=f"line {lineno}")
        t_us = _micros(fields[0].strip(), source, lineno)
        cpu_text = fields[1].strip()
        if not (cpu_text.upper().startswith("CPU") and cpu_text[3:].isdigit()):
            raise ConfigError(f"CPU field {cpu_text!r} is not CPU<n> (use -A)", source=source,
                              location=f"line {lineno}, field cpu")
        event = normalise_event(fields[4])
        if event not in table:
            if ignore_unknown:
                continue
            raise ConfigError(f"unknown perf event {fields[4]!r}; extend the event table "
                              "(--events FILE.yaml)", source=source,
                              location=f"line {lineno}, field event")
        count_text = fields[2].strip()
        if count_text in _NOT_COUNTED:
            count = 0
        elif count_text.isdigit():
            count = int(count_text)
        else:
            raise ConfigError(f"count {count_text!r} is not a non-negative integer",
                              source=source, location=f"line {lineno}, field count")
        if not stamps or stamps[-1] != t_us:
            if stamps and t_us < stamps[-1]:
                raise ConfigError("interval timestamps go backwards", source=source,
                                  location=f"line {lineno}, field time")
            stamps.append(t_us)
        key = (len(stamps) - 1, int(cpu_text[3:]), table[event])
        sums[key] = sums.get(key, 0) + count
    dts = [b - a for a, b in zip([0, *stamps[:-1]], stamps, strict=True)]
    rows: dict[tuple[int, int], dict[str, int]] = {}
    for (w, cpu, cid), count in sums.items():
        row = rows.setdefault((w, cpu), {"window": w, "cpu": cpu, "dt_us": dts[w]})
        row[counter_column(cid)] = count
    ids = sorted({cid for (_, _, cid) in sums})
    schema = {"window": pl.Int64, "cpu": pl.Int64, "dt_us": pl.Int64,
              **{counter_column(k): pl.UInt64 for k in ids}}
    ordered = [rows[k] for k in sorted(rows)]
    return pl.DataFrame(ordered, schema=schema).fill_null(0)
