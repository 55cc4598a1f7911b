"""`memlat decode`: what a kernel said to a CPUCP, read back from ftrace text.

Modules: ftrace (sans-I/O line codec of the kernel events), messages (payload decoding),
session (pairing commands with responses), check (replay into an emulated CPUCP),
reconstruct (the programmed profile as YAML, diff against a built-in), devfreq
(timelines, trans_stat, board versus governor), synth (kernel-format traces of memlat's
own probe), perfetto (the decode view in Perfetto), render (text output).
This module holds the file-level helpers the CLI uses.
"""

from __future__ import annotations

from pathlib import Path

from memlat.analysis.decode.ftrace import parse_text
from memlat.analysis.decode.reconstruct import Programmed, programmed_from_payloads
from memlat.analysis.decode.session import DecodeResult, decode_records
from memlat.errors import ConfigError
from memlat.qcom.ids import ParamId
from memlat.scmi.status import Status

COUNTER_NAMES = ("{stem}.counters.csv", "{stem}.counters.parquet", "counters.csv",
                 "counters.parquet")


def read_text(path: Path | str) -> str:
    """The file's text (undecodable bytes replaced); ConfigError naming the file."""
    p = Path(path)
    try:
        return p.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=str(p)) from exc


def decode_text(text: str) -> DecodeResult:
    """Parse and pair every record of `text`."""
    return decode_records(parse_text(text))


def decode_file(path: Path | str) -> DecodeResult:
    """decode_text of a file; ConfigError when it holds no SCMI or devfreq event at all."""
    result = decode_text(read_text(path))
    if not result.messages and not result.devfreq:
        where = f" ({len(result.malformed)} malformed)" if result.malformed else ""
        raise ConfigError("no scmi_msg_dump or devfreq_frequency line found" + where
                          + "; expected /sys/kernel/tracing/trace, trace-cmd report or "
                          "memlat platform serve output", source=str(path))
    return result


def programmed(result: DecodeResult, *, include_refused: bool = False) -> list[Programmed]:
    """The QCOM SET commands that took effect (SUCCESS, or no response traced);
    with include_refused, every SET sent (the configuration the driver tried)."""
    payloads = []
    for m in result.qcom():
        if m.message_id != 0x10:  # SET_PARAM only: GET/START/STOP program nothing
            continue
        if include_refused or m.status in (None, Status.SUCCESS):
            payloads.append(m.request_payload)
    return programmed_from_payloads(payloads)


def sampling_start_ns(result: DecodeResult) -> int | None:
    """When the firmware started sampling: the START_TIMER reply (else the command)."""
    for m in result.qcom():
        if m.param_id == ParamId.START_TIMER and m.status in (None, Status.SUCCESS):
            return m.t_response_ns if m.t_response_ns is not None else m.t_ns
    return None


def find_counters(trace_path: Path | str) -> Path | None:
    """A counter trace next to the ftrace file: <stem>.counters.csv/.parquet or
    counters.csv/.parquet in the same folder."""
    p = Path(trace_path)
    for pattern in COUNTER_NAMES:
        candidate = p.parent / pattern.format(stem=p.stem)
        if candidate.is_file():
            return candidate
    return None
