"""`memlat probe` and `memlat devfreq show` through the CLI (decisions.md §5)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from memlat.cli import app

REPO = Path(__file__).resolve().parents[2]
RFC_DTS = REPO / "src" / "memlat" / "examples" / "x1e80100-memlat-rfc.dts"
runner = CliRunner()

KEYS = {"protocol", "message_id", "token", "status", "payload", "reply"}


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_probe_json_x1e80100() -> None:
    res = runner.invoke(app, ["probe", "--soc", "x1e80100", "--json"])
    assert res.exit_code == 0, res.output
    lines = _lines(res.stdout)
    assert len(lines) == 70
    assert all(set(obj) == KEYS for obj in lines)
    assert all(obj["protocol"] == 0x80 and obj["status"] == 0 for obj in lines)
    assert lines[0]["payload"] == ("0000000054414c4d454d00001200000005000000ff000000"
                                   "020000000000000001000000ff00000003000000")
    assert lines[6]["payload"] == ("0000000054414c4d454d0000200000000000000000000000"
                                   "06000000e7032302a0050003870613068d082c08d409730c"
                                   "140f8010" + "00" * 16)
    assert lines[-3]["payload"] == "0000000054414c4d454d00001f00000004000000"
    assert lines[-1] == {**lines[-1], "message_id": 0x12,
                         "payload": "0000000054414c4d454d000024000000", "reply": ""}
    tokens = [obj["token"] for obj in lines]
    assert tokens == sorted(tokens) and len(set(tokens)) == 70


def test_probe_json_all_includes_discovery() -> None:
    res = runner.invoke(app, ["probe", "--json", "--all"])
    assert res.exit_code == 0, res.output
    lines = _lines(res.stdout)
    assert lines[0]["protocol"] == 0x10 and lines[0]["message_id"] == 0
    version = [o for o in lines if o["protocol"] == 0x80 and o["message_id"] == 0]
    assert version and version[0]["reply"] == "00000100"
    assert len([o for o in lines if o["protocol"] == 0x80 and o["message_id"] >= 0x10]) == 70


def test_probe_json_glymur_kaanapali() -> None:
    for soc, count in (("glymur", 70), ("kaanapali", 76)):
        res = runner.invoke(app, ["probe", "--soc", soc, "--json"])
        assert res.exit_code == 0, res.output
        lines = _lines(res.stdout)
        assert len(lines) == count and all(o["status"] == 0 for o in lines)


def test_probe_rfc_dts() -> None:
    res = runner.invoke(app, ["probe", "--dialect", "rfc2024", "--dts", str(RFC_DTS),
                              "--json"])
    assert res.exit_code == 1  # the firmware refused the unsorted maps
    lines = _lines(res.stdout)
    assert len(lines) == 22
    assert [i + 1 for i, o in enumerate(lines) if o["status"] != 0] == [6, 11, 18]
    assert {o["status"] for o in lines if o["status"] != 0} == {-2}
    assert lines[-1]["message_id"] == 0x12 and lines[-1]["status"] == 0
    assert "message 6 (MON_FREQ_MAP, ddr/monitor-0) failed" in res.stderr


def test_probe_table_and_bad_config() -> None:
    res = runner.invoke(app, ["probe"])
    assert res.exit_code == 0
    assert "MON_FREQ_MAP hw=ddr mon=0 rows=6" in res.stdout
    assert "probe ok: 70/70" in res.stderr
    bad = runner.invoke(app, ["probe", "--soc", "no-such-soc"])
    assert bad.exit_code == 2 and "no-such-soc" in bad.stderr


def test_devfreq_show(tmp_path: Path) -> None:
    res = runner.invoke(app, ["devfreq", "show", "--soc", "x1e80100", "--duration-ms", "120",
                              "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    for bus in ("ddr", "llcc", "ddr-qos"):
        assert f"==> /sys/class/devfreq/{bus}/trans_stat <==" in res.stdout
        text = (tmp_path / bus / "trans_stat").read_text()
        assert text.startswith("     From  :   To\n           :")
        assert text.count("*") == 1
        total = int(text.rsplit("Total transition : ", 1)[1])
        assert total >= 1
        assert (tmp_path / bus / "governor").read_text() == "remote\n"
    assert (tmp_path / "ddr-qos" / "available_frequencies").read_text() == "1 100\n"


def test_devfreq_show_replays_a_trace(tmp_path: Path) -> None:
    from memlat.traces.io import write_trace
    from memlat.traces.synth import synth_trace

    path = tmp_path / "trace.csv"
    write_trace(synth_trace(30, 12, seed=7, dt_us=4000), path)
    res = runner.invoke(app, ["devfreq", "show", "--trace", str(path), "--duration-ms", "200",
                              "--bus", "ddr"])
    assert res.exit_code == 0, res.output
    assert "/sys/class/devfreq/ddr/trans_stat" in res.stdout
    assert "/sys/class/devfreq/llcc/" not in res.stdout
    assert "Total transition : " in res.stdout


def test_devfreq_show_sm8550_l3_is_on_an_opp() -> None:
    """Issue 12: `memlat devfreq show --soc sm8550 --bus l3` showed cur_freq 806000000
    against the OPP 806400000 and a table without `*`; now cur_freq is an OPP and the
    table marks it. --raw-votes shows the kernel's empty trans_stat read, explained."""
    res = runner.invoke(app, ["devfreq", "show", "--soc", "sm8550", "--bus", "l3"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    opps = lines[lines.index("==> /sys/class/devfreq/l3/available_frequencies <==") + 1].split()
    cur = lines[lines.index("==> /sys/class/devfreq/l3/cur_freq <==") + 1]
    assert cur in opps
    assert sum(line.startswith("*") for line in lines) == 1
    res = runner.invoke(app, ["devfreq", "show", "--soc", "sm8550", "--bus", "l3",
                              "--raw-votes"])
    assert res.exit_code == 0, res.output
    assert "trans_stat reads empty" in res.output
    assert "Total transition" not in res.stdout
