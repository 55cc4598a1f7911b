"""Device trees as boards ship them: a .dtb (what /sys/firmware/fdt holds) compiled by dtc
from the shipped example, the binding validated by dtschema, and `memlat dt check`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memlat.agent.probe import check, iter_qcom, probe
from memlat.agent.session import make_agent
from memlat.cli import app
from memlat.config import load_config
from memlat.config.dt import is_dtb, load_dts, preprocess
from memlat.config.dtcheck import binding_path
from memlat.config.dtcheck import check as dt_check
from memlat.cpucp.boot import make_cpucp_platform
from memlat.errors import ConfigError
from memlat.qcom.dialect import Dialect
from memlat.scmi.status import Status
from memlat.transports.inproc import InProcessTransport

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "src" / "memlat" / "examples"
CRD = EXAMPLES / "x1e80100-crd-memlat.dts"
RFC = EXAMPLES / "x1e80100-memlat-rfc.dts"

needs_dtc = pytest.mark.skipif(shutil.which("dtc") is None,
                               reason="dtc (Debian device-tree-compiler) not installed")


def dtc(src: Path, out: Path) -> Path:
    """Compile `src` the way the kernel build does: cpp, then dtc -O dtb."""
    text = preprocess(src)
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(out), "-"],
                   input=text.encode(), check=True)
    return out


@pytest.fixture(scope="module")
def crd_dtb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("dtc") is None:
        pytest.skip("dtc not installed")
    # no .dtb suffix on purpose: /sys/firmware/fdt has none, the magic decides
    return dtc(CRD, tmp_path_factory.mktemp("dtb") / "fdt")


def _probe_payloads(cfg) -> list[bytes]:
    platform, _ = make_cpucp_platform(cfg.hardware())
    agent = make_agent(InProcessTransport(platform), Dialect(cfg.dialect))
    result = check(probe(agent, cfg, Dialect(cfg.dialect)))
    qcom = list(iter_qcom(result.exchanges))
    assert all(ex.status == Status.SUCCESS for ex in qcom)
    return [bytes(ex.payload) for ex in qcom]


@needs_dtc
def test_dtb_probes_to_the_same_70_commands_as_the_dts(crd_dtb: Path) -> None:
    assert is_dtb(crd_dtb) and not is_dtb(CRD)
    from_dts = load_config(dts=CRD)
    from_dtb = load_config(dts=crd_dtb)
    assert from_dtb.model_dump(exclude={"soc"}) == from_dts.model_dump(exclude={"soc"})
    assert from_dtb.soc.compatible == ["qcom,x1e80100-crd", "qcom,x1e80100"]
    a, b = _probe_payloads(from_dts), _probe_payloads(from_dtb)
    assert len(a) == len(b) == 70
    assert a == b  # byte-identical payloads


@needs_dtc
def test_rfc_dtb_reads_like_its_dts(tmp_path: Path) -> None:
    dtb = dtc(RFC, tmp_path / "rfc.dtb")
    assert load_dts(dtb).model_dump(exclude={"soc"}) == load_dts(RFC).model_dump(
        exclude={"soc"})


def test_truncated_dtb_is_refused_naming_libfdt_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dtb"
    bad.write_bytes(b"\xd0\x0d\xfe\xed" + b"\x00\x00\x10\x00" + b"\x00" * 32)
    with pytest.raises(ConfigError, match=r"bad\.dtb: not a valid flattened device tree"):
        load_dts(bad)


def test_binding_passes_dt_doc_validate() -> None:
    """The shipped binding against dtschema's meta-schemas (what `make dt_binding_check`
    runs first)."""
    tool = Path(sys.executable).with_name("dt-doc-validate")
    proc = subprocess.run([str(tool), str(binding_path())], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == proc.stderr == ""


@needs_dtc
def test_example_dtb_passes_dt_validate(crd_dtb: Path) -> None:
    """dt-validate (dtschema's own CLI) accepts the compiled example for this binding."""
    tool = Path(sys.executable).with_name("dt-validate")
    proc = subprocess.run([str(tool), "-l", "qcom,scmi-memlat", "-s",
                           str(binding_path().parent), str(crd_dtb)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "scmi-memlat" not in proc.stderr


@needs_dtc
@pytest.mark.parametrize("src", [CRD, RFC], ids=["crd-dts", "rfc-dts"])
def test_dt_check_accepts_the_shipped_examples(src: Path) -> None:
    result = CliRunner().invoke(app, ["dt", "check", str(src)])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output


@needs_dtc
def test_dt_check_accepts_a_dtb(crd_dtb: Path) -> None:
    result = CliRunner().invoke(app, ["dt", "check", str(crd_dtb)])
    assert result.exit_code == 0, result.output
    assert "/firmware/scmi/protocol@80/memlat; v8, 3 groups, 10 monitors, 70 probe" in (
        result.output)


def _variant(tmp_path: Path, old: str, new: str, *, in_dts: bool = False) -> Path:
    for f in ("x1e80100-crd-memlat.dts", "x1e80100-memlat.dtsi"):
        text = (EXAMPLES / f).read_text()
        if (f.endswith(".dts")) == in_dts:
            assert old in text
            text = text.replace(old, new, 1)
        (tmp_path / f).write_text(text)
    return tmp_path / "x1e80100-crd-memlat.dts"


@needs_dtc
def test_dt_check_names_node_and_property_of_each_problem(tmp_path: Path) -> None:
    src = _variant(tmp_path, "qcom,ipm-ceil = <MEMLAT_IPM_CEIL>;", 'qcom,ipm-ceil = "high";')
    text = src.with_name("x1e80100-memlat.dtsi").read_text()
    src.with_name("x1e80100-memlat.dtsi").write_text(
        text.replace("qcom,sample-period-ms = <4>;", "qcom,sample-period-ms = <4>;\n"
                     "\t\t\t\t\tqcom,bogus = <1>;", 1))
    result = dt_check(src)
    assert not result.ok
    found = {(f.node, f.prop, f.kind) for f in result.findings}
    mon0 = "/firmware/scmi/protocol@80/memlat/ddr@0/monitor-0"
    assert (mon0, "qcom,ipm-ceil", "schema") in found
    assert (mon0, "qcom,ipm-ceil", "memlat") in found
    assert any(f.node == "/firmware/scmi/protocol@80/memlat" and "qcom,bogus" in
               f"{f.prop} {f.message}" for f in result.findings)
    cli = CliRunner().invoke(app, ["dt", "check", str(src)])
    assert cli.exit_code == 1
    assert f"{mon0}:qcom,ipm-ceil: " in cli.output


@needs_dtc
def test_dt_check_range_error_from_schema_and_rules(tmp_path: Path) -> None:
    src = _variant(tmp_path, "qcom,sample-period-ms = <4>;", "qcom,sample-period-ms = <2000>;",
                   in_dts=True)
    result = dt_check(src)
    msgs = {(f.node, f.prop, f.kind): f.message for f in result.findings}
    key = ("/firmware/scmi/protocol@80/memlat", "qcom,sample-period-ms")
    assert "2000 is greater than the maximum of 1000" in msgs[(*key, "schema")]
    assert "sample_ms" in msgs[(*key, "memlat")]


def test_dt_check_unreadable_source_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "broken.dts"
    bad.write_text("/dts-v1/;\n/ { a = <1> };\n")
    result = CliRunner().invoke(app, ["dt", "check", str(bad)])
    assert result.exit_code == 2
    assert "broken.dts" in result.output
