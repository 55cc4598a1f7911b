"""perf stat -I <ms> -x, import: one test per row kind and layout, each from its exact shape.

Sources (Linux tools/perf): util/stat-display.c (perf >= 4.10; read at mainline v6.x)
`prepare_interval`, `print_aggr_id_csv`, `print_counter_value_csv`, `print_running_csv`,
`print_metric_csv`, `new_line_csv`, `printout`, `print_counter_aggrdata`; before the
split, builtin-stat.c (read at v3.4 and v4.4) `abs_printout`, `print_counter`,
`print_aggr`, `aggr_printout`, `print_interval`, `print_running`. docs/traces.md has the
table of row kinds with the same citations.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from memlat.cli import app
from memlat.errors import ConfigError
from memlat.traces import check_trace, load_trace, parse_perf

runner = CliRunner()
T1 = "     1.001323097"  # perf <= 5.x print_interval: "%6lu.%09lu%s"
T2 = "     2.002646194"


def _write(tmp_path: Path, lines: list[str], name: str = "perf.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_per_cpu_counter_rows_with_metric_columns(tmp_path: Path) -> None:
    """perf >= 4.10 stat-display.c: aggr_printout `CPU%d%s`, print_counter_value_csv
    `%.0f%s` + unit + name, print_running_csv `%s%lu%s%.2f`, print_metric_csv `,val,unit`
    (or `,,` without a metric). 9 fields."""
    path = _write(tmp_path, [
        f"{T1},CPU0,20574191,,cycles,8013551506,100.00,2.567,GHz",
        f"{T1},CPU0,10562267,,instructions,8013564958,100.00,0.51,insn per cycle",
        f"{T1},CPU1,30000,,cycles,8013551506,100.00,,",
    ])
    trace, info = load_trace(path)
    assert (trace.windows, trace.ncpus) == (1, 2)
    assert trace.deltas[0, 0, [0, 2]].tolist() == [20574191, 10562267]
    assert trace.deltas[0, 1, 0] == 30000
    assert trace.dt_us[0, 0] == 1001323
    assert info.format == "perf" and "timestamp" in info.reason
    assert info.perf is not None
    assert info.perf.columns == "time,cpu,count,unit,event,run,pct,metric,metric-unit"


def test_unpadded_timestamp_of_newer_perf(tmp_path: Path) -> None:
    """perf 6.x stat-display.c prepare_interval: `%lu.%09lu%s` (no width) in CSV mode."""
    path = _write(tmp_path, ["1.001323097,CPU0,5,,cycles,1000,100.00,,",
                             "2.002000000,CPU0,7,,cycles,1000,100.00,,"])
    trace = load_trace(path)[0]
    assert trace.dt_us[:, 0].tolist() == [1001323, 1000677]
    assert trace.deltas[:, 0, 0].tolist() == [5, 7]


@pytest.mark.parametrize("row", [
    f"{T1},CPU0,,,,,,1.20,stalled cycles per insn",   # mainline: CPU0, + 4 x sep + metric
    f"{T1},CPU0,,,,,,,1.20,stalled cycles per insn",  # the shape issue 12 reports
    f"{T1},,,,,1.20,stalled cycles per insn",         # without -A (no aggregation id)
])
def test_metric_only_continuation_rows_are_skipped(tmp_path: Path, row: str) -> None:
    """stat-display.c new_line_csv(): newline, the interval prefix, aggr_printout(), then
    os->nfields separators (printout(): 3 + aggr_fields[mode] + cgroup), then
    print_metric_csv() `,value,unit`. No count and no event: counted, skipped."""
    path = _write(tmp_path, [
        f"{T1},CPU0,20574191,,cycles,8013551506,100.00,2.567,GHz",
        f"{T1},CPU0,10562267,,instructions,8013564958,100.00,0.51,insn per cycle",
        row,
    ])
    trace, info = load_trace(path)
    assert trace.deltas[0, 0, 2] == 10562267
    assert info.perf is not None and info.perf.skipped() == {"metric-only": 1}
    assert "1 metric-only" in info.describe()


def test_issue_12_metric_row_no_longer_an_unknown_event(tmp_path: Path) -> None:
    """The exact file of issue 12 through `memlat trace check`: the metric-only row is
    reported as skipped, not as "unknown perf event ''"."""
    path = _write(tmp_path, [
        "     0.004001234,CPU0,8024690,,cycles,4001234,100.00,,",
        "     0.004001234,CPU0,12036000,,instructions,4001234,100.00,1.50,insn per cycle",
        "     0.004001234,CPU0,,,,,,,1.20,stalled cycles per insn",
    ])
    res = runner.invoke(app, ["trace", "check", str(path)])
    assert res.exit_code == 0, res.output
    assert "1 windows x 1 CPUs" in res.output
    assert "skipped: 1 metric-only" in res.output
    assert "unknown perf event" not in res.output


@pytest.mark.parametrize(("rows", "layout"), [
    # perf 6.x: printout() !ok -> print_counter_value_csv(bad_count), print_running_csv,
    # pm(NULL fmt) -> ",,"
    ([f"{T1},CPU1,<not counted>,,cycles,0,100.00,,",
      f"{T1},CPU1,<not supported>,,instructions,0,100.00,,"],
     "time,cpu,count,unit,event,run,pct,metric,metric-unit"),
    # perf 4.4 builtin-stat.c print_counter(): run == 0 -> "CPU%d,<not counted>," unit,
    # name, print_running
    ([f"{T1},CPU1,<not counted>,,cycles,0,100.00",
      f"{T1},CPU1,<not supported>,,instructions,0,100.00"],
     "time,cpu,count,unit,event,run,pct"),
    # perf 3.10-3.13 (builtin-stat.c as at v3.4 plus the -I prefix): "CPU%d,%s,%s"
    ([f"{T1},CPU1,<not counted>,cycles", f"{T1},CPU1,<not supported>,instructions"],
     "time,cpu,count,event"),
])
def test_not_counted_and_not_supported_read_as_zero(tmp_path: Path, rows: list[str],
                                                   layout: str) -> None:
    """CNTR_NOT_COUNTED / CNTR_NOT_SUPPORTED in place of the count: 0, and reported."""
    path = _write(tmp_path, [f"{T1},CPU0,100,,cycles,1000,100.00,,", *rows])
    trace, info = load_trace(path)
    assert trace.deltas[0, 1].sum() == 0 and trace.ncpus == 2
    assert info.perf is not None and info.perf.not_counted == 2
    # the layout is taken from the first counter row; check the old ones on their own
    only, info2 = load_trace(_write(tmp_path, rows, "only.csv"))
    assert info2.perf is not None and info2.perf.columns == layout
    assert only.deltas.sum() == 0


def test_old_layout_count_event(tmp_path: Path) -> None:
    """perf 3.10-3.13: builtin-stat.c abs_printout() `%s%.0f%s%s` (cpustr, count, sep,
    event): no unit, no run/percentage, no metric columns; print_interval `%6lu.%09lu%s`."""
    path = _write(tmp_path, [f"{T1},CPU0,12345,cycles", f"{T1},CPU0,678,instructions",
                             f"{T2},CPU0,1,cycles"])
    trace, info = load_trace(path)
    assert trace.deltas[:, 0, 0].tolist() == [12345, 1]
    assert trace.deltas[0, 0, 2] == 678
    assert info.perf is not None and info.perf.columns == "time,cpu,count,event"


def test_layout_of_perf_4_4_without_metric_columns(tmp_path: Path) -> None:
    """perf 4.4 builtin-stat.c: abs_printout() count, unit, name; print_running()
    `%s%lu%s%.2f`; printout() prints no shadow metric in CSV (`!csv_output`)."""
    path = _write(tmp_path, [f"{T1},CPU0,12345,,cycles,1001000,100.00",
                             f"{T1},CPU0,678,,instructions,1001000,100.00"])
    trace, info = load_trace(path)
    assert trace.deltas[0, 0, [0, 2]].tolist() == [12345, 678]
    assert info.perf is not None and info.perf.columns == "time,cpu,count,unit,event,run,pct"


def test_units_column_and_scaled_counts(tmp_path: Path) -> None:
    """print_counter_value_csv(): `%.2f` when the event scale is fractional, then the
    unit (`evsel->unit`), then the name. A mapped event's count must be whole."""
    path = _write(tmp_path, [f"{T1},CPU0,12.00,Joules,power/energy-pkg/,1000,100.00,,",
                             f"{T1},CPU0,8.013480,msec,task-clock,1000,100.00,0.999,CPUs utilized",
                             f"{T1},CPU0,100,,cycles,1000,100.00,,"])
    trace, info = load_trace(path, perf_events={"energy-pkg": 6}, ignore_unknown_events=True)
    assert trace.deltas[0, 0, 6] == 12 and trace.deltas[0, 0, 0] == 100
    assert info.perf is not None and info.perf.skipped() == {"unknown-event": 1}
    with pytest.raises(ConfigError, match=r"line 2, field count: count '8.013480'"):
        load_trace(path, perf_events={"energy-pkg": 6, "task-clock": 7})


def test_run_and_enabled_percentage_of_multiplexed_counters(tmp_path: Path) -> None:
    """print_running_csv(): run time and 100*run/ena; perf prints counts already scaled
    to the enabled time, so a 50.00 % row is imported as printed."""
    path = _write(tmp_path, [f"{T1},CPU0,4000,,cycles,500000,50.00,,"])
    assert load_trace(path)[0].deltas[0, 0, 0] == 4000


def test_cgroup_column(tmp_path: Path) -> None:
    """abs_printout() -> print_cgroup() (`-G`): `,cgroup` after the event name, before
    the run columns (printout() adds one to nfields). Rows of one CPU for several cgroups
    add up."""
    path = _write(tmp_path, [f"{T1},CPU0,100,,cycles,/system.slice,1000,100.00,,",
                             f"{T1},CPU0,50,,cycles,/user.slice,1000,100.00,,"])
    trace, info = load_trace(path)
    assert trace.deltas[0, 0, 0] == 150
    assert info.perf is not None
    assert info.perf.columns == "time,cpu,count,unit,event,cgroup,run,pct,metric,metric-unit"


@pytest.mark.parametrize("row", [
    "           summary,CPU0,999,,cycles,8013551506,100.00,,",  # 5.13+ printout(): %16s
    "CPU0,999,,cycles,8013551506,100.00,,",  # 5.7-5.12, or --no-csv-summary: no time
])
def test_summary_rows_are_skipped(tmp_path: Path, row: str) -> None:
    """`--summary` with -I prints the totals after the last interval: prefixed `summary`
    since perf 5.13 (commit "perf stat: Align CSV output for summary mode", printout()),
    without any time field before. Counted and skipped; they never start a window."""
    path = _write(tmp_path, [f"{T1},CPU0,100,,cycles,1000,100.00,,", row])
    trace, info = load_trace(path)
    assert trace.windows == 1 and trace.deltas[0, 0, 0] == 100
    assert info.perf is not None and info.perf.skipped() == {"summary": 1}


def test_comment_and_blank_lines(tmp_path: Path) -> None:
    """cmd_stat() with -o FILE writes `# started on %s\\n` with ctime() (which ends in a
    newline itself), so a comment line and a blank line precede the rows."""
    path = _write(tmp_path, ["# started on Tue Nov 24 04:00:00 2026", "",
                             f"{T1},CPU0,100,,cycles,1000,100.00,,"])
    trace, info = load_trace(path)
    assert trace.deltas[0, 0, 0] == 100
    assert info.perf is not None and info.perf.skipped() == {"comment": 1, "blank": 1}


def test_metric_only_mode_is_refused(tmp_path: Path) -> None:
    """print_metric_headers_csv(): `time,` + aggr_header_csv (`cpu,`) + metric units is
    the only CSV header perf prints, for --metric-only, whose rows carry no counts."""
    path = _write(tmp_path, ["time,cpu,insn per cycle,", f"{T1},CPU0,0.51,"])
    with pytest.raises(ConfigError, match=r"line 1: perf stat --metric-only output"):
        load_trace(path, fmt="perf")


@pytest.mark.parametrize(("row", "what"), [
    (f"{T1},20574191,,cycles,8013551506,100.00,0.003,GHz", "system-wide totals"),
    (f"{T1},S0,8,20574191,,cycles,8013551506,100.00,,", "per-socket"),  # 4.4 "S%d%s%d%s"
    (f"{T1},S0-C0,2,2057,,cycles,8013551506,100.00,,", "perf before 5.2"),  # 4.4 core
    (f"{T1},S0-D0-C0,2,2057,,cycles,8013551506,100.00,,", "per-core"),  # 5.2+ core
    (f"{T1},S0-D0,4,2057,,cycles,8013551506,100.00,,", "per-die"),
    (f"{T1},N0,8,2057,,cycles,8013551506,100.00,,", "per-node"),
    (f"{T1},S0-D0-CLS1,4,2057,,cycles,8013551506,100.00,,", "per-cluster"),
    (f"{T1},S0-D0-L3-ID0,8,2057,,cycles,8013551506,100.00,,", "per-cache"),
    (f"{T1},perf-1234,2057,,cycles,8013551506,100.00,,", "per-thread"),  # "%s-%d%s"
])
def test_aggregated_layouts_are_refused_by_name(tmp_path: Path, row: str, what: str) -> None:
    """print_aggr_id_csv() (4.4: aggr_printout()): AGGR_GLOBAL prints no id; socket,
    die, core, node (and cluster, cache) print the id and the CPU count; per-thread
    prints comm-pid. None is per CPU, so each is named and refused with the fix (-A)."""
    path = _write(tmp_path, [row])
    with pytest.raises(ConfigError) as info:
        load_trace(path)
    msg = str(info.value)
    assert "line 1, field cpu" in msg and what in msg and "-A" in msg


def test_aggregated_metric_only_row_is_still_a_metric_row(tmp_path: Path) -> None:
    """new_line_csv() under --per-socket: id, CPU count, then the empty fields; counted
    as metric-only (the counter rows around it decide the refusal)."""
    rows = list(parse_perf([f"{T1},CPU0,5,,cycles,1,100.00,,",
                            f"{T1},S0,8,,,,,,0.50,insn per cycle"]))
    assert rows[1].skipped() == {"metric-only": 1}


@pytest.mark.parametrize("name", ["cpu_core/cycles/", "cycles [cpu_core]",
                                  "armv8_pmuv3_0/cpu_cycles/", "cycles:u"])
def test_hybrid_and_pmu_event_names(tmp_path: Path, name: str) -> None:
    """uniquify_event_name(): hybrid `pmu/event/` or `event [pmu]`; rows of the same
    CPU and counter from several PMUs add up."""
    path = _write(tmp_path, [f"{T1},CPU0,10,,{name},1,100.00,,",
                             f"{T1},CPU0,5,,cycles,1,100.00,,"])
    assert load_trace(path)[0].deltas[0, 0, 0] == 15


def test_explicit_format_overrides_detection(tmp_path: Path) -> None:
    """--format perf on a file detection would call CSV gives the perf error, and the
    reverse; auto says what it detected and why."""
    perf = _write(tmp_path, [f"{T1},CPU0,5,,cycles,1,100.00,,"], "p.csv")
    with pytest.raises(ConfigError, match="missing column 'window'"):
        load_trace(perf, fmt="csv")
    csv = _write(tmp_path, ["window,cpu,dt_us,ev0", "0,0,4000,1"], "c.csv")
    with pytest.raises(ConfigError, match="line 1, field time"):
        load_trace(csv, fmt="perf")
    with pytest.raises(ConfigError, match="unknown trace format 'xml'"):
        load_trace(csv, fmt="xml")
    res = runner.invoke(app, ["trace", "check", str(csv)])
    assert "read as csv (line 1 is a header" in res.output
    res = runner.invoke(app, ["trace", "check", str(perf), "--format", "perf"])
    assert res.exit_code == 0 and "read as perf (--format given)" in res.output


def test_csv_with_header_typo_gets_a_csv_error(tmp_path: Path) -> None:
    """Format guessing (issue 12): a header typo is a CSV error naming the column."""
    path = _write(tmp_path, ["windw,cpu,dt_us,ev0", "0,0,4000,1"])
    res = runner.invoke(app, ["trace", "check", str(path)])
    assert res.exit_code == 2
    assert "missing column 'window'" in res.output and "'windw' (a typo?)" in res.output
    assert "timestamp" not in res.output.split("\n")[0]


@pytest.mark.parametrize("lines", [["window,cpu,dt_us,ev0"],
                                   ["# started on Tue Nov 24 04:00:00 2026", ""]])
def test_header_only_trace_has_no_windows(tmp_path: Path, lines: list[str]) -> None:
    """A header-only CSV (or a perf file with no rows) is an error, not "ok"."""
    path = _write(tmp_path, lines)
    with pytest.raises(ConfigError, match="no windows"):
        check_trace(path)
    res = runner.invoke(app, ["trace", "check", str(path)])
    assert res.exit_code == 2 and "no windows" in res.output and "ok" not in res.output


def test_perf_cpu_bounds_name_the_line(tmp_path: Path) -> None:
    """A CPU number beyond the limit is refused at its line, before any allocation."""
    path = _write(tmp_path, [f"{T1},CPU0,5,,cycles,1,100.00,,",
                             f"{T1},CPU999999999,5,,cycles,1,100.00,,"])
    with pytest.raises(ConfigError, match=r"line 2, field cpu: unknown CPU 999999999: the "
                                          r"limit is 1024 CPUs \(raise it with --max-cpus\)"):
        load_trace(path)
    with pytest.raises(ConfigError, match=r"line 2, field cpu: unknown CPU 999999999: the "
                                          r"platform has 12 CPUs"):
        load_trace(path, ncpus=12)


def test_replay_takes_format(tmp_path: Path) -> None:
    """`memlat replay --format perf` reads a perf file whatever its name."""
    sample = Path(__file__).parent / "data" / "perf_stat_sample.csv"
    src = tmp_path / "perf.data.txt"
    src.write_text(sample.read_text())
    out = tmp_path / "votes.csv"
    res = runner.invoke(app, ["replay", "--trace", str(src), "--out", str(out),
                              "--format", "perf"])
    assert res.exit_code == 0, res.output
    assert "2 windows" in res.output
    votes = out.read_text()
    res = runner.invoke(app, ["replay", "--trace", str(src), "--out", str(out),
                              "--format", "csv"])
    assert res.exit_code == 2 and out.read_text() == votes  # an existing --out is kept
    res = runner.invoke(app, ["replay", "--trace", str(src), "--out", str(out),
                              "--format", "csv", "--force"])
    assert res.exit_code == 2 and "cannot read trace as CSV" in res.output


def test_a_stray_line_after_the_rows_is_not_taken_for_a_summary(tmp_path: Path) -> None:
    """Only what perf prints as an unaligned summary row (an aggregation id, CPU<n>, or a
    count first) is skipped as one; any other line is an error naming it."""
    path = _write(tmp_path, [f"{T1},CPU0,5,,cycles,1,100.00,,",
                             "Failed to read counters, retrying"])
    with pytest.raises(ConfigError, match=r"line 2, field time: first field 'Failed to read"):
        load_trace(path)
