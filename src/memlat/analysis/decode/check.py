"""Replay a trace's commands into an emulated CPUCP and say what it would have done.

Every traced command of the protocols the emulation implements (base 0x10 and QCOM 0x80,
memlat.cpucp.boot.make_cpucp_platform) is sent, in trace order and with its traced
sequence number, to a fresh emulated CPUCP of the SoC (its dialect: the trace's). Three
kinds of finding:

* refused: the emulated firmware answers other than SUCCESS; `why` is the reason the
  firmware's validation gives (CpucpService.refusals), e.g. a cpumask outside the group;
* after-failure: a command sent after the first traced failure. protocol.md §3.6: the
  v8 driver stops at the first failed command, so any later command is a driver bug;
  the RFC driver (protocol.md §4.4) logs and carries on, so they are expected there and
  reported as such;
* disagree: the traced status differs from the emulation's (a board whose firmware
  accepts or refuses what memlat's would not, or a trace edited by hand).

Commands of other protocols (perf, clock...) are counted as not emulated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memlat.analysis.decode.session import DecodeResult, Message, status_name
from memlat.config.model import SocConfig
from memlat.cpucp.boot import make_cpucp_platform
from memlat.qcom.dialect import Dialect
from memlat.qcom.ids import PROTOCOL_ID as QCOM_PROTOCOL_ID
from memlat.scmi.header import Header, MessageType
from memlat.scmi.message import Message as ScmiMessage
from memlat.scmi.protocols.identity import BASE_PROTOCOL_ID
from memlat.scmi.status import Status

EMULATED = (BASE_PROTOCOL_ID, QCOM_PROTOCOL_ID)


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: kind (refused, after-failure, disagree), the message, a sentence."""

    kind: str
    message: Message
    text: str
    emulated_status: int | None = None
    why: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The `memlat decode --check --json` object of a finding."""
        out: dict[str, Any] = {"kind": "finding", "finding": self.kind,
                               "index": self.message.index, "line": self.message.line,
                               "message": self.message.name, "param": self.message.param,
                               "traced_status": status_name(self.message.status),
                               "emulated_status": status_name(self.emulated_status),
                               "text": self.text}
        if self.why is not None:
            out["why"] = self.why
        return out


@dataclass
class CheckReport:
    """Findings in trace order, plus counts of what was replayed."""

    soc: str
    dialect: Dialect
    findings: list[Finding] = field(default_factory=list)
    replayed: int = 0
    not_emulated: int = 0
    expected_after_failure: bool = False

    @property
    def ok(self) -> bool:
        """No refusal, no disagreement, and nothing sent after a failure in v8."""
        return not self.findings

    def summary(self) -> str:
        """One line."""
        counts: dict[str, int] = {}
        for f in self.findings:
            counts[f.kind] = counts.get(f.kind, 0) + 1
        parts = ", ".join(f"{n} {k}" for k, n in counts.items()) or "no findings"
        return (f"check against an emulated {self.soc} CPUCP ({self.dialect.value}): "
                f"{self.replayed} commands replayed, {self.not_emulated} of other protocols "
                f"not emulated; {parts}")


def _label(m: Message) -> str:
    what = m.param or m.name
    return f"#{m.index} {m.protocol}/{what} (line {m.line}, seq {m.seq:#06x})"


def check_trace(result: DecodeResult, soc: SocConfig, dialect: Dialect | None = None
                ) -> CheckReport:
    """Replay `result`'s commands into a fresh emulated CPUCP of `soc` (module docstring)."""
    d = dialect or result.dialect or Dialect(soc.dialect)
    platform, service = make_cpucp_platform(soc.hardware(), dialect=d)
    report = CheckReport(soc.name, d, expected_after_failure=d is Dialect.RFC2024)
    first_failure: Message | None = None
    for m in result.commands():
        if m.protocol_id not in EMULATED:
            report.not_emulated += 1
            continue
        if first_failure is not None and m.protocol_id == QCOM_PROTOCOL_ID:
            policy = ("expected: the RFC driver carries on (protocol.md §4.4)"
                      if d is Dialect.RFC2024 else
                      "the v8 driver must stop at the first failure (protocol.md §3.6)")
            report.findings.append(Finding(
                "after-failure", m, f"{_label(m)} sent after {_label(first_failure)} failed "
                f"with {status_name(first_failure.status)}; {policy}"))
        before = len(service.refusals)
        header = Header(m.message_id, m.protocol_id, m.seq & 0x3FF, MessageType.COMMAND)
        reply = platform.handle(ScmiMessage(header, m.request_payload))
        report.replayed += 1
        emu = reply.status if reply is not None and len(reply.payload) >= 4 else None
        why = service.refusals[-1][3] if len(service.refusals) > before else None
        if emu is not None and emu != Status.SUCCESS:
            reason = why or status_name(emu)
            report.findings.append(Finding(
                "refused", m, f"{_label(m)}: the firmware refuses it with "
                f"{status_name(emu)}: {reason}", emu, why))
        if m.status is not None and emu is not None and m.status != emu:
            report.findings.append(Finding(
                "disagree", m, f"{_label(m)}: traced {status_name(m.status)}, the emulated "
                f"firmware answers {status_name(emu)}" + (f" ({why})" if why else ""),
                emu, why))
        if (first_failure is None and m.status is not None and m.status != Status.SUCCESS
                and m.protocol_id == QCOM_PROTOCOL_ID):
            first_failure = m
    return report
