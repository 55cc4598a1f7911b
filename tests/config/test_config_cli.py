"""`memlat soc list` and `memlat soc show` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from memlat.cli import app

RUNNER = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "memlat" / "examples"
RFC = EXAMPLES / "x1e80100-memlat-rfc.dts"


def test_soc_list_table_and_json() -> None:
    res = RUNNER.invoke(app, ["soc", "list"])
    assert res.exit_code == 0, res.output
    for name in ("x1e80100", "x1p42100", "glymur", "kaanapali", "sm8550", "sm8650"):
        assert name in res.output
    res = RUNNER.invoke(app, ["soc", "list", "--json"])
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert rows["x1e80100"]["commands"] == 70 and rows["kaanapali"]["commands"] == 76
    assert rows["glymur"]["cpus"] == 18 and rows["glymur"]["monitors"] == 10


def test_soc_show_x1e80100() -> None:
    res = RUNNER.invoke(app, ["soc", "show", "x1e80100"])
    assert res.exit_code == 0, res.output
    assert "70 probe commands" in res.output
    assert "999→547, 1440→768, 1671→1555, 2189→2092, 2516→3187, 3860→4224" in res.output
    assert "mon_3" in res.output and "compute" in res.output
    assert "4224000 kHz" in res.output


def test_soc_show_json_and_dialect() -> None:
    res = RUNNER.invoke(app, ["soc", "show", "hamoa", "--json"])
    data = json.loads(res.output)
    assert data["soc"]["name"] == "x1e80100" and data["commands"] == {"v8": 70}
    assert data["groups"][0]["monitors"][0]["map"][0] == [999, 547]
    res = RUNNER.invoke(app, ["soc", "show", "x1e80100", "--dialect", "rfc2024", "--json"])
    assert json.loads(res.output)["commands"] == {"rfc2024": 59}


def test_soc_show_dts_and_errors() -> None:
    res = RUNNER.invoke(app, ["soc", "show", "--dts", str(RFC)])
    assert res.exit_code == 0, res.output
    assert "monitor-1" in res.output and "kept for rfc2024 fidelity" in res.output
    res = RUNNER.invoke(app, ["soc", "show", "nosuchsoc"])
    assert res.exit_code == 2
    assert "unknown SoC 'nosuchsoc'" in res.output
