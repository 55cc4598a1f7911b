"""Importer for `perf stat -I <ms> -x,` output (interval CSV), in every layout perf prints.

Every line is classified into one row kind (docs/traces.md lists each with the perf
version and source function that prints it):

* `counter`: `time,<aggr id>,count,[unit,]event[,cgroup][,noise%][,run,pct][,metric,
  metric-unit]`. perf >= 4.4 always prints the unit column (empty for most events);
  perf 3.10-3.13 printed `count,event` only. The run time / percentage columns appear
  from perf 4.x; the two metric columns from the perf that prints shadow metrics in CSV
  (stat-display.c `print_metric_csv`).
* `metric-only`: the continuation row perf prints for a second metric of one event
  (stat-display.c `new_line_csv`): the time and aggregation id, then empty fields, then
  `value,metric unit`. It carries no count; it is counted and skipped.
* `summary`: the totals printed at the end with `--summary` (perf >= 5.7): prefixed
  `summary` since perf 5.13 (commit "perf stat: Align CSV output for summary mode",
  `printout()`), without a time field before that or with `--no-csv-summary`. Skipped.
* `comment` (`# started on ...`, written by `-o FILE`) and `blank`: skipped.
* the `time,cpu,...` header of `--metric-only` output: refused (no counts follow).

Only per-CPU rows (`-A`, id `CPU<n>`) can be replayed: the governor needs each CPU's
counts. Rows aggregated over CPUs (no `-A`; `--per-core`, `--per-die`, `--per-socket`,
`--per-node`, `--per-cluster`, `--per-cache`, `--per-thread`) are recognised and refused
with an error that says which aggregation was found and to record with `-A`.

Successive distinct timestamps (seconds since the start, cumulative) become windows 0,
1, 2 ...; a window's dt_us is its timestamp minus the previous one (the first window
starts at 0). Event names map to CPUCP counter ids (decisions.md §3) through
`DEFAULT_EVENTS`, which a dict or a YAML file `{name: id}` can extend or override.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import polars as pl

from memlat.errors import ConfigError
from memlat.governor.spec import (
    CNT_CYCLES,
    CPU_CYCLES,
    INST_RETIRED,
    L2_D_RFILL,
    N_COUNTERS,
    STALL_BACKEND_MEM,
)
from memlat.traces.validate import MAX_CPUS, counter_column
from memlat.yamlfile import read_yaml

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

NOT_COUNTED = ("<not counted>", "<not supported>")  # stat-display.c CNTR_NOT_*

# prepare_interval()/print_interval(): "%6lu.%09lu" (perf < 6.x pads, later does not)
_TIME_RE = re.compile(r"^\d+\.\d{9}$")
_CPU_RE = re.compile(r"^CPU(\d+)$")
_NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?$")
# print_aggr_id_csv() / aggr_printout(): id, then (except per-thread) the CPU count
_AGGREGATIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^S\d+-D\d+-L\d+-ID\d+$"), "per-cache (--per-cache)"),
    (re.compile(r"^S\d+-D\d+-CLS\d+$"), "per-cluster (--per-cluster)"),
    (re.compile(r"^S\d+-D\d+-C\d+$"), "per-core (--per-core)"),
    (re.compile(r"^S\d+-C\d+$"), "per-core (--per-core, perf before 5.2)"),
    (re.compile(r"^S\d+-D\d+$"), "per-die (--per-die)"),
    (re.compile(r"^S\d+$"), "per-socket (--per-socket)"),
    (re.compile(r"^N\d+$"), "per-node (--per-node)"),
)
_THREAD_RE = re.compile(r"^.+-\d+$")
_UNIQUIFIED_RE = re.compile(r"\s*\[[^\]]*\]$")  # "cycles [cpu_core]" (uniquify_event_name)

ROW_KINDS = ("counter", "metric-only", "summary", "comment", "blank", "unknown-event")


@dataclass
class PerfReport:
    """What the importer saw: rows by kind, the column layout, the aggregation."""

    rows: Counter[str] = field(default_factory=Counter)
    columns: str = ""
    not_counted: int = 0

    def skipped(self) -> dict[str, int]:
        """Rows that did not become counts, by kind (only kinds that occurred)."""
        return {k: n for k, n in self.rows.items() if k != "counter" and n}

    def describe(self) -> str:
        """One line for the CLI: layout, counter rows and skipped rows by kind."""
        skipped = ", ".join(f"{n} {k}" for k, n in sorted(self.skipped().items())) or "none"
        text = (f"perf stat -I -x, per-CPU (-A); columns {self.columns or '?'}; "
                f"{self.rows['counter']} counter rows")
        if self.not_counted:
            text += f" ({self.not_counted} <not counted>/<not supported> read as 0)"
        return f"{text}; skipped: {skipped}"


def load_event_table(extra: dict[str, int] | str | Path | None = None) -> dict[str, int]:
    """DEFAULT_EVENTS updated with `extra`: a dict, or a YAML file holding a mapping."""
    table = dict(DEFAULT_EVENTS)
    if extra is None:
        return table
    source = "<dict>"
    data: Any = extra
    if isinstance(extra, str | Path):
        source = str(extra)
        data = read_yaml(Path(extra))
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
    """`armv8_pmuv3_0/cpu_cycles/u`, `cycles:u`, `cycles [cpu_core]` -> the bare name."""
    text = _UNIQUIFIED_RE.sub("", name.strip().lower())
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


def _count(text: str, source: str, line: int) -> int:
    """A count cell: "%.0f", or "%.2f" for scaled events (a zero fraction only)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal(-1)
    if value < 0 or value != value.to_integral_value():
        raise ConfigError(f"count {text!r} is not a non-negative integer", source=source,
                          location=f"line {line}, field count")
    return int(value)


def _aggregation(cell: str) -> str | None:
    """The aggregation a non-CPU id names, or None when `cell` is no aggregation id."""
    for pattern, name in _AGGREGATIONS:
        if pattern.match(cell):
            return name
    if _THREAD_RE.match(cell) and not _NUMBER_RE.match(cell):
        return "per-thread (--per-thread)"
    return None


def _columns(rest: list[str]) -> tuple[str, str]:
    """(event, layout) of the fields after the count of a counter row.

    perf 3.10-3.13 `abs_printout()`: count,event. perf >= 3.14: count,unit,event, then
    [cgroup], [noise%], [run,pct], [metric value, metric unit].
    """
    if len(rest) == 1:
        return rest[0], "time,cpu,count,event"
    if _NUMBER_RE.match(rest[1]):  # count,event,run,pct without a unit column
        return rest[0], "time,cpu,count,event,run,pct"
    event, tail = rest[1], rest[2:]
    cols = ["time", "cpu", "count", "unit", "event"]
    i = 0
    if i < len(tail) and tail[i] and not _NUMBER_RE.match(tail[i].rstrip("%")):
        cols.append("cgroup")
        i += 1
    if i < len(tail) and tail[i].endswith("%"):
        cols.append("noise")
        i += 1
    if i + 1 < len(tail) and _NUMBER_RE.match(tail[i]) and _NUMBER_RE.match(tail[i + 1]):
        cols += ["run", "pct"]
        i += 2
    if i + 1 < len(tail):
        cols += ["metric", "metric-unit"]
    return event, ",".join(cols)


def parse_perf(lines: Iterable[str], *, source: str = "<perf>",
               events: dict[str, int] | None = None, ignore_unknown: bool = False,
               ncpus: int | None = None,
               max_cpus: int = MAX_CPUS) -> tuple[pl.DataFrame, PerfReport]:
    """Parse perf stat interval output into a trace table and a report of what was seen.

    Counts of the same counter on the same CPU and interval add up (hybrid systems list
    one line per PMU); `<not counted>` and `<not supported>` count as 0. An event name
    missing from the table is an error unless ignore_unknown (then counted as skipped).
    A CPU >= ncpus (when given) or >= max_cpus is refused. Errors name the line
    (counted from 1) and the field.
    """
    table = load_event_table(events)
    report = PerfReport()
    sums: dict[tuple[int, int, int], int] = {}
    stamps: list[int] = []
    for lineno, fields in enumerate(csv.reader(lines), start=1):
        cells = [f.strip() for f in fields]
        if not cells or not "".join(cells):
            report.rows["blank"] += 1
            continue
        if cells[0].startswith("#"):
            report.rows["comment"] += 1
            continue
        first = cells[0]
        unaligned = stamps and not _TIME_RE.match(first) and (
            _CPU_RE.match(first) or _NUMBER_RE.match(first) or first in NOT_COUNTED
            or _aggregation(first))
        if first == "summary" or unaligned:
            report.rows["summary"] += 1  # aligned (5.13+) or without time (5.7-5.12)
            continue
        if first == "time" and not stamps:
            # print_metric_headers_csv(): only --metric-only prints a CSV header
            raise ConfigError("perf stat --metric-only output has metrics but no counts; "
                              "record with perf stat -I <ms> -x, -A (without --metric-only)",
                              source=source, location=f"line {lineno}")
        if not _TIME_RE.match(first):
            raise ConfigError(f"first field {first!r} is not an interval timestamp "
                              "(expected perf stat -I <ms> -x, output)", source=source,
                              location=f"line {lineno}, field time")
        rest = cells[1:]
        cpu: int | None = None
        if rest and (m := _CPU_RE.match(rest[0])):
            cpu = int(m.group(1))
            rest = rest[1:]
            limit = ncpus if ncpus is not None else max_cpus
            if cpu >= limit:
                what = (f"the platform has {ncpus} CPUs" if ncpus is not None else
                        f"the limit is {max_cpus} CPUs (raise it with --max-cpus)")
                raise ConfigError(f"unknown CPU {cpu}: {what}", source=source,
                                  location=f"line {lineno}, field cpu")
        elif rest and rest[0] and (agg := _aggregation(rest[0])):
            if not any(rest[2:-2]):
                report.rows["metric-only"] += 1
                continue
            raise ConfigError(f"rows aggregated {agg}: memlat needs one row per CPU; "
                              "record with perf stat -I <ms> -x, -A", source=source,
                              location=f"line {lineno}, field cpu")
        if not rest or not rest[0]:
            report.rows["metric-only"] += 1  # new_line_csv(): no count, no event
            continue
        if cpu is None:
            raise ConfigError("system-wide totals without a CPU column: memlat needs one "
                              "row per CPU; record with perf stat -I <ms> -x, -A",
                              source=source, location=f"line {lineno}, field cpu")
        if len(rest) < 2:
            raise ConfigError(f"expected count and event after CPU{cpu}, got {len(rest)} "
                              "field(s)", source=source, location=f"line {lineno}")
        event_text, layout = _columns(rest[1:])
        report.columns = report.columns or layout
        event = normalise_event(event_text)
        if not event:
            raise ConfigError("empty event name", source=source,
                              location=f"line {lineno}, field event")
        t_us = _micros(first, source, lineno)
        if not stamps or stamps[-1] != t_us:
            if stamps and t_us < stamps[-1]:
                raise ConfigError("interval timestamps go backwards", source=source,
                                  location=f"line {lineno}, field time")
            stamps.append(t_us)
        if event not in table:
            if ignore_unknown:
                report.rows["unknown-event"] += 1
                continue
            raise ConfigError(f"unknown perf event {event_text!r}; extend the event table "
                              "(--events FILE.yaml) or pass --ignore-unknown",
                              source=source, location=f"line {lineno}, field event")
        report.rows["counter"] += 1
        if rest[0] in NOT_COUNTED:
            report.not_counted += 1
            count = 0
        else:
            count = _count(rest[0], source, lineno)
        key = (len(stamps) - 1, cpu, table[event])
        sums[key] = sums.get(key, 0) + count
    dts = [b - a for a, b in zip([0, *stamps[:-1]], stamps, strict=True)]
    rows: dict[tuple[int, int], dict[str, int]] = {}
    for (w, c, cid), count in sums.items():
        row = rows.setdefault((w, c), {"window": w, "cpu": c, "dt_us": dts[w]})
        row[counter_column(cid)] = count
    ids = sorted({cid for (_, _, cid) in sums})
    schema = {"window": pl.Int64, "cpu": pl.Int64, "dt_us": pl.Int64,
              **{counter_column(k): pl.UInt64 for k in ids}}
    ordered = [rows[k] for k in sorted(rows)]
    frame = pl.DataFrame(ordered, schema=schema).fill_null(0)
    # a window whose every row was skipped (unknown events only) still exists
    present = {w for (w, _) in rows}
    missing = [w for w in range(len(stamps)) if w not in present]
    if missing and rows:
        filler = pl.DataFrame({"window": missing, "cpu": [0] * len(missing),
                               "dt_us": [dts[w] for w in missing]},
                              schema={"window": pl.Int64, "cpu": pl.Int64, "dt_us": pl.Int64})
        frame = pl.concat([frame, filler], how="diagonal").fill_null(0).sort("window", "cpu")
    return frame, report


def perf_frame(text: str, *, source: str = "<perf>", events: dict[str, int] | None = None,
               ignore_unknown: bool = False) -> pl.DataFrame:
    """parse_perf over a string; the trace table only."""
    return parse_perf(text.splitlines(), source=source, events=events,
                      ignore_unknown=ignore_unknown)[0]
