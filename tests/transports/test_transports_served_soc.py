"""The served CPUCP knows its SoC: a configuration for another part is refused with
INVALID_PARAMETERS (protocol.md §2.4) and changes nothing, and a driver reload (a new
agent process probing the same SoC again) works as on a board."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from memlat.agent.probe import probe
from memlat.agent.session import make_agent
from memlat.config import load_config
from memlat.cpucp.boot import make_cpucp_platform
from memlat.cpucp.service import CpucpService
from memlat.qcom.codec import MapMsg, NodeMsg, ScalarMsg, encode_request
from memlat.qcom.dialect import Dialect
from memlat.qcom.ids import Algorithm, ParamId, QcomMessage
from memlat.scmi.platform import CallContext
from memlat.scmi.status import Status
from memlat.transports.inproc import InProcessTransport

SET = QcomMessage.SET_PARAM
PROFILES = ("x1e80100", "x1p42100", "glymur", "kaanapali", "sm8550", "sm8650")


def _set(platform, service: CpucpService, param: ParamId, body: bytes) -> Status:
    payload = encode_request(Algorithm.MEMLAT, int(param), body)
    reply = service.commands()[SET].handler(CallContext(1, platform), payload)
    return Status(reply.status)


@pytest.fixture
def hamoa():
    cfg = load_config(soc="x1e80100")
    platform, service = make_cpucp_platform(cfg.hardware(enforce_limits=True))
    assert _set(platform, service, ParamId.SET_MEM_GROUP, NodeMsg(0xFFF, 0).pack()) == 0
    assert _set(platform, service, ParamId.SET_MONITOR, NodeMsg(0xF, 0, 0, 0).pack()) == 0
    return platform, service


@pytest.mark.parametrize(("param", "body", "reason"), [
    (ParamId.SET_MEM_GROUP, NodeMsg(0x3FFFF, 1).pack(), "CPUs [12, 13, 14, 15, 16, 17]"),
    (ParamId.SET_MONITOR, NodeMsg(0x1000, 0, 0, 1).pack(), "beyond this SoC's 12 CPUs"),
    (ParamId.SET_MEM_GROUP, NodeMsg(0xFFF, 3).pack(), "no memory group with hw_type 3"),
    (ParamId.SET_MIN_FREQ, ScalarMsg(0, 0, 100000).pack(), "outside ddr's OPP limits"),
    (ParamId.SET_MAX_FREQ, ScalarMsg(0, 0, 5000000).pack(), "200000..4224000"),
    (ParamId.MON_FREQ_MAP, MapMsg(0, 0, ((999, 547), (3860, 9000))).pack(),
     "map row 1 targets 9000"),
])
def test_configuration_beyond_the_soc_is_refused(hamoa, param, body, reason) -> None:
    platform, service = hamoa
    before = service.snapshot()
    assert _set(platform, service, param, body) is Status.INVALID_PARAMETERS
    assert reason in service.refusals[-1][3]
    assert service.snapshot() == before


@pytest.mark.parametrize("soc", PROFILES)
def test_every_profile_fits_its_own_firmware(soc: str) -> None:
    cfg = load_config(soc=soc)
    platform, service = make_cpucp_platform(cfg.hardware(enforce_limits=True))
    agent = make_agent(InProcessTransport(platform), Dialect(cfg.dialect))
    result = probe(agent, cfg, cfg.dialect)
    assert result.ok, (result.failure, service.refusals)


def test_static_table_masks_of_a_smaller_sibling_are_known_cpus() -> None:
    purwa = load_config(soc="x1p42100").hardware(enforce_limits=True)
    assert purwa.ncpus == 8 and purwa.cpu_mask == 0xFFF
    assert purwa.check_cpumask(0xF00, "monitor cpumask") is None
    assert "[12]" in (purwa.check_cpumask(0x1000, "monitor cpumask") or "")


def _probe(soc: str, sock: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "memlat", "probe", "--soc", soc,
                           "--transport", f"unix:{sock}"],
                          capture_output=True, text=True, timeout=120)


def test_foreign_soc_refused_then_reload_probes_work(short_tmp: Path, platform_process) -> None:
    sock = short_tmp / "p.sock"
    server = platform_process("--soc", "x1e80100", "--unix", str(sock)).start()
    foreign = _probe("glymur", sock)
    assert foreign.returncode != 0 and "Traceback" not in foreign.stderr
    assert "SET_MEM_GROUP" in foreign.stdout + foreign.stderr
    assert "INVALID_PARAMETERS" in foreign.stdout + foreign.stderr
    for _reload in range(2):  # first probe, then a driver reload by a new process
        own = _probe("x1e80100", sock)
        assert own.returncode == 0, own.stdout[-2000:] + own.stderr
        assert "probe ok: 70/70 commands, firmware running" in own.stdout + own.stderr
    assert server.terminate() == 0
