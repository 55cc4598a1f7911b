"""Every command x each bad input -> the exit status and message of docs/cli.md.

The convention: one message on stderr, `memlat <command>: ...`, naming the file, field or
value; exit 2 for bad input or usage, 1 for a failure at run time; never a traceback.
The table runs in-process through `memlat.cli.run_cli` (the console script's own entry,
top-level handler included); a few rows also run as real `memlat` processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from memlat.cli import run_cli
from memlat.traces import synth_trace, write_trace

REPO = Path(__file__).resolve().parents[2]
RFC_DTS = REPO / "src" / "memlat" / "examples" / "x1e80100-memlat-rfc.dts"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Paths the table refers to as {NAME}."""
    root = tmp_path_factory.mktemp("cli")
    binary = root / "blob.bin"  # the start of an ELF file: not UTF-8 from byte 24
    binary.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(17) + bytes(range(200, 256)) * 4)
    bincsv = root / "blob.csv"  # a CSV header, then binary
    bincsv.write_bytes(b"window,cpu,dt_us\n" + bytes(range(200, 256)) * 4)
    clash = root / "clash"
    clash.mkdir()
    (clash / "results.json").write_text("{}\n")  # not memlat's: --force must not touch it
    text = root / "notes.txt"
    text.write_text("a file memlat did not create\n")
    trace = root / "trace.csv"
    write_trace(synth_trace(20, 12, seed=1), trace)
    full = root / "full"
    full.mkdir()
    (full / "mine.txt").write_text("keep\n")
    (root / "chan.ctl").write_text("not a socket\n")  # where --shm chan would listen
    return {"BIN": str(binary), "BINCSV": str(bincsv), "CLASH": str(clash),
            "TXT": str(text), "TRACE": str(trace),
            "MISSING": str(root / "no-such-folder" / "x"), "FULL": str(full),
            "NEW": str(root / "new"), "CHAN": str(root / "chan"), "RFC_DTS": str(RFC_DTS),
            "PROC": "/proc/memlat-cannot-write.csv"}


# (command line, exit status, fragment of the stderr message)
CASES: list[tuple[str, int, str]] = [
    # usage
    ("nosuch", 2, "No such command"),
    ("run --bogus", 2, "No such option: --bogus"),
    # trace *
    ("trace check {BIN}", 2, "binary data at byte offset 7"),
    ("trace check {BINCSV}", 2, "binary data at byte offset 17"),
    ("trace check {MISSING}", 2, "no such file"),
    ("trace convert {BIN} {NEW}.csv", 2, "binary data at byte offset"),
    ("trace convert {TRACE} {MISSING}.csv", 2, "does not exist"),
    ("trace convert {TRACE} {FULL}", 2, "is a folder"),
    ("trace convert {TRACE} {PROC}", 2, "cannot write trace"),
    ("trace synth {MISSING}.csv", 2, "does not exist"),
    ("trace synth --idle 2 {NEW}.csv", 2, "--idle"),
    ("trace convert {TRACE} {NEW}.csv --ncpus 2", 2, "unknown CPU"),
    ("trace convert {TRACE} {NEW}.csv --events {TRACE}", 2, "event table must be a mapping"),
    # replay
    ("replay --trace {BIN} --out {NEW}.csv", 2, "binary data at byte offset"),
    ("replay --trace {TRACE} --out {MISSING}.csv", 2, "does not exist"),
    ("replay --trace {MISSING} --out {NEW}.csv", 2, "--trace"),
    ("replay --soc nosuch --trace {TRACE} --out {NEW}.csv", 2, "unknown SoC 'nosuch'"),
    ("replay --soc {BIN} --trace {TRACE} --out {NEW}.csv", 2, "not a text profile"),
    ("replay --events {BIN} --trace {TRACE} --out {NEW}.csv", 2, "not a text file"),
    # devfreq
    ("devfreq show --trace {BIN}", 2, "binary data at byte offset"),
    ("devfreq show --out {MISSING}", 2, "does not exist"),
    ("devfreq show --out {TXT}", 2, "is not a folder"),
    ("devfreq show --out {FULL}", 2, "is not empty"),
    ("devfreq show --duration-ms 4 --bus nosuch", 2, "no bus nosuch"),
    ("devfreq show --soc nosuch", 2, "unknown SoC 'nosuch'"),
    ("devfreq show --dialect v9", 2, "unknown dialect 'v9'"),
    # probe
    ("probe --dts {BIN}", 2, "not a device-tree source"),
    ("probe --dts {MISSING}", 2, "no such device-tree file"),
    ("probe --soc nosuch", 2, "unknown SoC 'nosuch'"),
    ("probe --transport bogus:x", 2, "unknown transport"),
    ("probe --transport unix:{MISSING}", 2, "cannot connect"),
    ("probe --on-error sometimes", 2, "--on-error"),
    ("probe --transport raw:{MISSING}", 2, "cannot access"),
    ("probe --transport shm:{TXT}", 2, "cannot reach the platform's control socket"),
    ("probe --dialect v9", 2, "unknown dialect 'v9'"),
    ("probe --dts {TRACE}", 2, "device tree does not parse"),
    ("probe --dialect rfc2024 --dts {RFC_DTS}", 1, "message 6 (MON_FREQ_MAP"),  # runtime
    # soc
    ("soc show {BIN}", 2, "not a text profile"),
    ("soc show nosuch", 2, "unknown SoC 'nosuch'"),
    ("soc show --dts {BIN}", 2, "not a device-tree source"),
    ("soc show {TRACE}", 2, "a profile must be a YAML mapping"),
    ("soc show x1e80100 --dialect v9", 2, "unknown dialect 'v9'"),
    # platform serve: every refusal happens before anything is served
    ("platform serve", 2, "give at least one of"),
    ("platform serve --unix {MISSING}.sock", 2, "does not exist"),
    ("platform serve --unix {TXT}", 2, "refusing to replace it"),
    ("platform serve --shm {CHAN}", 2, "chan.ctl exists and is a regular file, not a socket"),
    ("platform serve --unix {NEW}.sock --trace {BIN}", 2, "binary data at byte offset"),
    ("platform serve --unix {NEW}.sock --trace {MISSING}", 2, "--trace"),
    ("platform serve --unix {NEW}.sock --soc nosuch", 2, "unknown SoC 'nosuch'"),
    ("platform serve --shm {NEW}.shm --doorbell bell", 2, "--doorbell"),
    ("platform serve --raw-fuse {TXT}", 2, "is not a folder"),
    # bench
    ("bench --suite nosuch", 2, "unknown suite 'nosuch'; choose from governor"),
    # sweep: checked before any job starts
    ("sweep --out {MISSING}.parquet", 2, "does not exist"),
    ("sweep --out {TXT}", 2, "exists; pass --force"),
    ("sweep --workloads {BIN} --out {NEW}.parquet", 2, "is not UTF-8"),
    ("sweep --policies turbo --out {NEW}.parquet", 2, "turbo"),
    ("sweep --backend nosuch --out {NEW}.parquet", 2, "unknown backend 'nosuch'"),
    ("sweep --ipm-ceil 4x --out {NEW}.parquet", 2, "comma-separated integers"),
    ("sweep --soc nosuch --out {NEW}.parquet", 2, "unknown SoC 'nosuch'"),
    ("sweep --map-scale -1 --out {NEW}.parquet", 2, "-1 is not a positive number"),
    ("sweep --sample-ms 0 --out {NEW}.parquet", 2, "0 is below the minimum 1"),
    ("sweep --boost 99999 --out {NEW}.parquet", 2, "freq_scale_pct"),
    ("sweep --only nosuch --out {NEW}.parquet", 2, "unknown workload(s) nosuch"),
    # tune (issue 14's command, same convention)
    ("tune --budget -1 --out {NEW}", 2, "--budget must be a fraction"),
    ("tune --trials 0 --out {NEW}", 2, "--trials must be at least 1"),
    # run: checked before the simulation
    ("run --out {TXT}", 2, "exists and is not a folder"),
    ("run --out {MISSING}", 2, "does not exist"),
    ("run --out {FULL}", 2, "is not empty"),
    ("run --out {CLASH} --force --only membench --duration 0.05 --policies performance", 2,
     "holds results.json, which memlat did not write"),
    ("run --workloads {BIN} --out {NEW}", 2, "is not UTF-8"),
    ("run --workloads {MISSING} --out {NEW}", 2, "--workloads"),
    ("run --policies memlat,turbo --out {NEW}", 2, "unknown policy turbo"),
    ("run --only nosuch --out {NEW}", 2, "unknown workload(s) nosuch"),
    ("run --soc nosuch --out {NEW}", 2, "unknown SoC 'nosuch'"),
    ("run --jobs 0 --out {NEW}", 2, "--jobs"),
    ("run --memlat-backend magic --out {NEW}", 2, "--memlat-backend"),
    ("run --duration 0 --out {NEW}", 2, "--duration"),
    ("run --workloads {TRACE} --out {NEW}", 2, "WorkloadFile"),
    ("run --workloads {FULL} --out {NEW}", 2, "not a regular file"),
]


def _argv(line: str, files: dict[str, str]) -> list[str]:
    return line.format(**files).split()


@pytest.mark.parametrize(("line", "status", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_message_and_the_exit_status(
        line: str, status: int, fragment: str, files: dict[str, str],
        capfd: pytest.CaptureFixture[str]) -> None:
    argv = _argv(line, files)
    assert run_cli(argv) == status
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    command = " ".join(["memlat", *[w for w in argv[:2] if not w.startswith(("-", "/"))]])
    errors = [ln for ln in err.splitlines() if fragment in ln]
    assert errors, err
    # the message names the command that failed (`memlat run: ...`, `memlat trace check: ...`)
    assert errors[0].startswith("memlat"), errors[0]
    if status == 2 and not line.startswith("nosuch"):
        assert errors[0].startswith(command), (errors[0], command)
    if line.startswith("run "):
        assert not Path(files["NEW"]).exists()  # refused before anything was written


def test_refusals_change_nothing(files: dict[str, str]) -> None:
    """The files the table offered as outputs are exactly as they were."""
    assert Path(files["TXT"]).read_text() == "a file memlat did not create\n"
    assert sorted(p.name for p in Path(files["FULL"]).iterdir()) == ["mine.txt"]
    assert Path(files["CHAN"] + ".ctl").read_text() == "not a socket\n"
    assert sorted(p.name for p in Path(files["CLASH"]).iterdir()) == ["results.json"]
    assert Path(files["CLASH"], "results.json").read_text() == "{}\n"
    assert not Path(files["MISSING"]).parent.exists()


@pytest.mark.parametrize(("line", "status", "fragment"), [
    ("trace check {BIN}", 2, "memlat trace check: "),
    ("bench --suite nosuch", 2, "memlat bench: "),
    ("run --out {TXT}", 2, "memlat run: "),
    ("sweep --out {MISSING}.parquet", 2, "memlat sweep: "),
])
def test_real_process_exit_status(line: str, status: int, fragment: str,
                                  files: dict[str, str]) -> None:
    """The console script itself: stderr only, the status, no traceback."""
    proc = subprocess.run([sys.executable, "-m", "memlat", *_argv(line, files)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "100"})
    assert proc.returncode == status, proc.stderr
    assert proc.stderr.startswith(fragment), proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr


def test_outputs_never_replace_inputs_or_foreign_files(tmp_path: Path,
                                                       capfd: pytest.CaptureFixture[str]
                                                       ) -> None:
    """replay/trace outputs: the command's own input is refused even with --force; an
    existing file is replaced only with --force (nothing memlat did not create is lost)."""
    trace = tmp_path / "t.csv"
    assert run_cli(["trace", "synth", str(trace), "--windows", "20", "--cpus", "12"]) == 0
    before = trace.read_bytes()
    assert run_cli(["replay", "--trace", str(trace), "--out", str(trace), "--force"]) == 2
    assert "is also an input" in capfd.readouterr().err and trace.read_bytes() == before
    keep = tmp_path / "keep.csv"
    keep.write_text("precious\n")
    for argv in (["replay", "--trace", str(trace), "--out", str(keep)],
                 ["trace", "synth", str(keep)],
                 ["trace", "convert", str(trace), str(keep)]):
        assert run_cli(argv) == 2, argv
        assert "exists; pass --force" in capfd.readouterr().err
        assert keep.read_text() == "precious\n"
    assert run_cli(["replay", "--trace", str(trace), "--out", str(keep), "--force"]) == 0
    assert keep.read_text().startswith("window,group,khz")
