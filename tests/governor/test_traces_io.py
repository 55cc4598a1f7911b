"""Trace files: CSV/Parquet round trips, validation errors, the perf stat importer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from memlat.errors import ConfigError
from memlat.governor.spec import CounterTrace
from memlat.traces import load_event_table, read_trace, synth_trace, write_trace
from memlat.traces.io import trace_to_frame

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    trace = synth_trace(25, 6, seed=11, wrap_frac=0.2, extra_counters=True)
    path = tmp_path / f"t{suffix}"
    write_trace(trace, path)
    back = read_trace(path)
    assert np.array_equal(back.deltas, trace.deltas)  # includes values near 2**64
    assert np.array_equal(back.dt_us, trace.dt_us)


def test_missing_cpu_rows_are_idle(tmp_path: Path) -> None:
    path = tmp_path / "sparse.csv"
    path.write_text("window,cpu,dt_us,ev0,ev2,ev5\n0,0,4000,100,200,3\n1,2,4000,7,8,9\n")
    trace = read_trace(path, ncpus=4)
    assert trace.deltas.shape == (2, 4, 9)
    assert trace.deltas[0, 1:].sum() == 0
    assert trace.deltas[1, 2, 5] == 9
    assert trace.dt_us[1].tolist() == [4000] * 4


def test_mixed_dt_within_a_window_cannot_be_written(tmp_path: Path) -> None:
    trace = synth_trace(2, 2, seed=1)
    trace.dt_us[1, 1] = 5
    with pytest.raises(ConfigError, match="window 1"):
        write_trace(trace, tmp_path / "x.csv")


HEADER = "window,cpu,dt_us,ev0,ev2,ev5\n"


@pytest.mark.parametrize(("body", "column", "fragment"), [
    ("window,cpu,ev0\n0,0,1\n", "column dt_us", "missing column"),
    (HEADER + "0,0,4000,10,-5,1\n", "column ev2, row 1", "negative"),
    (HEADER + "0,0,4000,10,1.5,1\n", "column ev2, row 1", "not a non-negative integer"),
    (HEADER + "0,0,4000,10,abc,1\n", "column ev2, row 1", "not a non-negative integer"),
    (HEADER + "0,0,4000,10,,1\n", "column ev2, row 1", "empty cell"),
    (HEADER + "0,0,4000,1,1,1\n1,0,4000,1,1,1\n0,0,4000,1,1,1\n", "column window, row 3",
     "out of order"),
    (HEADER + "0,0,4000,1,1,1\n0,12,4000,1,1,1\n", "column cpu, row 2", "unknown CPU 12"),
    (HEADER + "0,0,4000,1,1,1\n0,1,8000,1,1,1\n", "column dt_us, row 2", "inconsistent dt_us"),
    (HEADER + "0,1,4000,1,1,1\n0,1,4000,1,1,1\n", "column cpu, row 2", "appears twice"),
    ("window,cpu,dt_us,ev9\n0,0,1,1\n", "column ev9", "out of range"),
])
def test_validation_errors_name_file_and_column(tmp_path: Path, body: str, column: str,
                                                fragment: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(ConfigError) as info:
        read_trace(path, ncpus=12)
    msg = str(info.value)
    assert str(path) in msg
    assert column in msg
    assert fragment in msg


def test_required_counter_missing(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("window,cpu,dt_us,ev0,ev2\n0,0,4000,1,1\n")
    with pytest.raises(ConfigError, match=r"column ev5.*counter 5"):
        read_trace(path, required_counters=[0, 2, 5])


def test_parquet_float_and_signed_columns_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    pl.DataFrame({"window": [0], "cpu": [0], "dt_us": [4000], "ev0": [1.25]}).write_parquet(path)
    with pytest.raises(ConfigError, match=r"bad\.parquet:column ev0, row 1: .*not an integer"):
        read_trace(path)
    pl.DataFrame({"window": [0], "cpu": [-1], "dt_us": [4000], "ev0": [1]}).write_parquet(path)
    with pytest.raises(ConfigError, match=r"column cpu, row 1: value -1 is negative"):
        read_trace(path)


def test_perf_stat_import() -> None:
    trace = read_trace(DATA / "perf_stat_sample.csv")
    assert trace.windows == 2 and trace.ncpus == 2
    # timestamps 0.004012345 and 0.008025001 s -> 4012 us and 4013 us
    assert trace.dt_us[:, 0].tolist() == [4012, 4013]
    assert trace.deltas[0, 0, [0, 2, 3, 5]].tolist() == [8024690, 12036000, 1203600, 6018]
    assert trace.deltas[0, 1].sum() == 0  # <not counted>
    assert trace.deltas[1, 1, [0, 2, 3, 5]].tolist() == [2000000, 1000000, 500000, 1000]


def test_perf_unknown_event_and_extension(tmp_path: Path) -> None:
    path = tmp_path / "perf.csv"
    path.write_text("0.004000000,CPU0,5,,ll_cache_miss_rd,4000000,100.00,,\n"
                    "0.004000000,CPU0,800,,cycles,4000000,100.00,,\n")
    with pytest.raises(ConfigError, match=r"perf\.csv:line 1, field event: unknown perf event"):
        read_trace(path)
    table = tmp_path / "events.yaml"
    table.write_text("ll_cache_miss_rd: 6\n")
    trace = read_trace(path, perf_events=load_event_table(table))
    assert trace.deltas[0, 0, 6] == 5 and trace.deltas[0, 0, 0] == 800
    trace = read_trace(path, perf_events={"LL_CACHE_MISS_RD": 8})
    assert trace.deltas[0, 0, 8] == 5


def test_event_table_rejects_bad_ids() -> None:
    with pytest.raises(ConfigError, match="foo"):
        load_event_table({"foo": 42})


def test_synth_covers_corner_cases() -> None:
    trace = synth_trace(400, 8, seed=5)
    d = trace.deltas
    assert (d.sum(axis=2) == 0).any()  # idle CPUs
    assert ((d[..., 5] == 0) & (d[..., 0] > 0)).any()  # busy, no misses
    assert (d[..., 0] >= 2**32).any()  # u32 wraps
    again = synth_trace(400, 8, seed=5)
    assert np.array_equal(again.deltas, d)


def test_frame_has_every_standard_column() -> None:
    df = trace_to_frame(CounterTrace(dt_us=np.zeros((1, 1), np.int64),
                                     deltas=np.zeros((1, 1, 9), np.uint64)))
    assert df.columns == ["window", "cpu", "dt_us", "ev0", "ev1", "ev2", "ev3", "ev5"]


def test_cli_limits_match_the_library() -> None:
    from memlat.cli import trace as cli_trace
    from memlat.traces import validate

    assert (cli_trace.MAX_WINDOWS, cli_trace.MAX_CPUS) == (validate.MAX_WINDOWS,
                                                         validate.MAX_CPUS)


# -- bounds (issue 17 item 3): window numbers dense from 0, limits named ------------------

@pytest.mark.parametrize("window", ["20000000", "1000000000000"])
def test_far_window_is_refused_before_any_allocation(tmp_path: Path, window: str) -> None:
    path = tmp_path / "tiny.csv"
    path.write_text(f"window,cpu,dt_us,ev0\n{window},11,1,0\n")  # the 45-byte trace
    with pytest.raises(ConfigError) as info:
        read_trace(path)
    msg = str(info.value)
    assert "column window, row 1" in msg and f"the first window is {window}" in msg


def test_window_gap_is_refused_with_the_row(tmp_path: Path) -> None:
    path = tmp_path / "gap.csv"
    path.write_text("window,cpu,dt_us,ev0\n0,0,1,0\n2,0,1,0\n")
    with pytest.raises(ConfigError, match=r"column window, row 2: window 2 follows window 0"):
        read_trace(path)


def test_limits_name_themselves_and_the_option(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("window,cpu,dt_us,ev0\n0,0,1,0\n1,1000000000,1,0\n")
    with pytest.raises(ConfigError, match=r"row 2: unknown CPU 1000000000: the limit is 1024 "
                                          r"CPUs \(raise it with --max-cpus\)"):
        read_trace(path)
    path.write_text("window,cpu,dt_us,ev0\n0,0,1,0\n1,0,1,0\n2,0,1,0\n")
    with pytest.raises(ConfigError, match=r"row 3: window 2 exceeds the limit of 2 windows "
                                          r"\(raise it with --max-windows\)"):
        read_trace(path, max_windows=2)
    assert read_trace(path, max_windows=3).windows == 3


def test_parquet_is_read_in_batches_too(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from memlat.traces import io as trace_io

    trace = synth_trace(40, 5, seed=4)
    path = tmp_path / "t.parquet"
    trace_to_frame(trace).write_parquet(path, row_group_size=16)
    monkeypatch.setattr(trace_io, "BATCH_ROWS", 9)
    back = read_trace(path)
    assert np.array_equal(back.deltas, trace.deltas) and np.array_equal(back.dt_us, trace.dt_us)


def test_batches_give_the_same_trace_and_whole_file_rows(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows split across batches of 7 rows (6 CPUs a window) read as in one batch;
    errors after the first batch still name the row in the whole file."""
    from memlat.traces import io as trace_io

    trace = synth_trace(30, 6, seed=2, idle_frac=0.0)
    path = tmp_path / "t.csv"
    write_trace(trace, path)
    monkeypatch.setattr(trace_io, "BATCH_ROWS", 7)
    back = read_trace(path)
    assert np.array_equal(back.deltas, trace.deltas) and np.array_equal(back.dt_us, trace.dt_us)
    info = trace_io.check_trace(path)
    assert (info.rows, info.windows, info.ncpus) == (180, 30, 6)
    lines = path.read_text().splitlines()
    lines[8] = lines[7]  # row 8 repeats row 7: same window and CPU, across the boundary
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=r"column cpu, row 8: CPU 0 appears twice in window 1"):
        read_trace(path)
    lines = path.read_text().splitlines()
    lines[8] = lines[8].replace(",4000,", ",4001,", 1).replace("1,0,", "1,1,", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=r"column dt_us, row 8: inconsistent dt_us in window 1"):
        read_trace(path)
