"""Decode one SCMI payload into names, fields and units (no I/O, never raises).

Protocol facts:
* every protocol: PROTOCOL_VERSION (0x0), PROTOCOL_ATTRIBUTES (0x1),
  PROTOCOL_MESSAGE_ATTRIBUTES (0x2), NEGOTIATE_PROTOCOL_VERSION (0x10), protocol.md §1.3;
* base protocol 0x10: protocol.md §1.4, codecs of memlat.scmi.protocols.base;
* QCOM 0x80 in both dialects (v8 "MEMLAT", rfc2024 "memlat"): protocol.md §2.2-§2.4 and
  §4.2, codecs of memlat.qcom.codec; the dialect comes from the algorithm string of each
  request header;
* performance 0x13 and clock 0x14 (traffic other drivers interleave): message names and
  the few layouts shown here follow the Arm SCMI specification (DEN0056) chapters 4.5
  and 4.6, as Linux drivers/firmware/arm_scmi/perf.c and clock.c send them. Anything
  else is named and shown as hex.

A `Decoded` holds `fields` (JSON-ready: ints, strings, lists), `units` (field -> unit)
and a one-line `text`. A payload that does not decode gives `error` (naming the field
and byte offset, from memlat.wire.Reader) and the raw hex.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from memlat.errors import DecodeError
from memlat.qcom import codec
from memlat.qcom.dialect import Dialect
from memlat.qcom.ids import GROUP_EVENT_ORDER, HwType, ParamId, QcomMessage, algorithm_text
from memlat.qcom.ids import PROTOCOL_ID as QCOM_PROTOCOL_ID
from memlat.scmi.protocols.base import (
    AgentInfo,
    BaseAttributes,
    BaseMessage,
    ProtocolList,
    ShortName,
)
from memlat.wire import Reader

PROTOCOL_NAMES = {0x10: "base", 0x11: "power", 0x12: "system", 0x13: "perf", 0x14: "clock",
                  0x15: "sensor", 0x16: "reset", 0x17: "voltage", 0x18: "powercap",
                  0x19: "pinctrl", QCOM_PROTOCOL_ID: "qcom"}
COMMON_MESSAGES = {0x0: "PROTOCOL_VERSION", 0x1: "PROTOCOL_ATTRIBUTES",
                   0x2: "PROTOCOL_MESSAGE_ATTRIBUTES", 0x10: "NEGOTIATE_PROTOCOL_VERSION"}
_MESSAGES: dict[int, dict[int, str]] = {
    0x10: {int(m): m.name for m in BaseMessage},
    0x13: {0x3: "PERFORMANCE_DOMAIN_ATTRIBUTES", 0x4: "PERFORMANCE_DESCRIBE_LEVELS",
           0x5: "PERFORMANCE_LIMITS_SET", 0x6: "PERFORMANCE_LIMITS_GET",
           0x7: "PERFORMANCE_LEVEL_SET", 0x8: "PERFORMANCE_LEVEL_GET",
           0x9: "PERFORMANCE_NOTIFY_LIMITS", 0xA: "PERFORMANCE_NOTIFY_LEVEL",
           0xB: "PERFORMANCE_DESCRIBE_FASTCHANNEL", 0xC: "PERFORMANCE_DOMAIN_NAME_GET"},
    0x14: {0x3: "CLOCK_ATTRIBUTES", 0x4: "CLOCK_DESCRIBE_RATES", 0x5: "CLOCK_RATE_SET",
           0x6: "CLOCK_RATE_GET", 0x7: "CLOCK_CONFIG_SET", 0x8: "CLOCK_NAME_GET",
           0x9: "CLOCK_RATE_NOTIFY", 0xA: "CLOCK_RATE_CHANGE_REQUESTED_NOTIFY",
           0xB: "CLOCK_CONFIG_GET", 0xC: "CLOCK_POSSIBLE_PARENTS_GET",
           0xD: "CLOCK_PARENT_SET", 0xE: "CLOCK_PARENT_GET", 0xF: "CLOCK_GET_PERMISSIONS"},
    QCOM_PROTOCOL_ID: {int(m): m.name for m in QcomMessage},
}
_NOTIFICATIONS = {
    0x10: {0x0: "BASE_ERROR_EVENT"},
    0x13: {0x0: "PERFORMANCE_LIMITS_CHANGED", 0x1: "PERFORMANCE_LEVEL_CHANGED"},
    0x14: {0x0: "CLOCK_RATE_CHANGED", 0x1: "CLOCK_RATE_CHANGE_REQUESTED"},
}
_DELAYED = {0x14: {0x5: "CLOCK_RATE_SET_COMPLETE"}}


def protocol_name(protocol_id: int) -> str:
    """base, perf, clock, qcom... or `0xNN`."""
    return PROTOCOL_NAMES.get(protocol_id, f"{protocol_id:#04x}")


def message_name(protocol_id: int, message_id: int, kind: str = "command") -> str:
    """The message's name for `kind` (command, notification, delayed), else `MSG_0xNN`."""
    if kind == "notification":
        return _NOTIFICATIONS.get(protocol_id, {}).get(message_id, f"EVENT_{message_id:#04x}")
    if kind == "delayed" and message_id in _DELAYED.get(protocol_id, {}):
        return _DELAYED[protocol_id][message_id]
    table = _MESSAGES.get(protocol_id, {})
    if message_id in table:
        return table[message_id]
    return COMMON_MESSAGES.get(message_id, f"MSG_{message_id:#04x}")


@dataclass
class Decoded:
    """Fields (JSON-ready), their units, a one-line text; `error` when it did not decode."""

    fields: dict[str, Any] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    text: str = ""
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        """fields, units, text (and error)."""
        out: dict[str, Any] = {"fields": self.fields, "units": self.units, "text": self.text}
        if self.error is not None:
            out["error"] = self.error
        return out


def _raw(data: bytes, error: str | None = None) -> Decoded:
    if not data and error is None:
        return Decoded()
    return Decoded({"hex": data.hex()}, {}, data.hex(), error)


def _u32s(data: bytes, names: tuple[str, ...], context: str) -> dict[str, int]:
    r = Reader(data, context=context)
    return {n: r.u32(n) for n in names}


def _version(value: int) -> str:
    return f"{value >> 16}.{value & 0xFFFF}"


def _text(fields: dict[str, Any], units: dict[str, str]) -> str:
    parts = []
    for key, value in fields.items():
        unit = units.get(key)
        if isinstance(value, dict):
            shown = "{" + ", ".join(f"{k}={v}" for k, v in value.items()) + "}"
        elif isinstance(value, list):
            shown = "[" + ", ".join("->".join(str(x) for x in v) if isinstance(v, list)
                                    else str(v) for v in value) + "]"
        else:
            shown = value
        parts.append(f"{key}={shown}" + (f" {unit}" if unit else ""))
    return " ".join(parts)


def _decoded(fields: dict[str, Any], units: dict[str, str] | None = None,
             text: str | None = None) -> Decoded:
    u = units or {}
    return Decoded(fields, u, _text(fields, u) if text is None else text)


# ---- commands -------------------------------------------------------------------------

def decode_command(protocol_id: int, message_id: int, payload: bytes
                   ) -> tuple[Decoded, Dialect | None, int | None]:
    """A command's parameters -> (decoded, QCOM dialect or None, QCOM param id or None)."""
    try:
        if protocol_id == QCOM_PROTOCOL_ID and message_id in _MESSAGES[QCOM_PROTOCOL_ID]:
            return _qcom_command(payload)
        return _command(protocol_id, message_id, payload), None, None
    except DecodeError as exc:
        return _raw(payload, str(exc)), None, None


def _command(pt: int, mid: int, payload: bytes) -> Decoded:
    if mid == 0x2:
        f = _u32s(payload, ("message_id",), "PROTOCOL_MESSAGE_ATTRIBUTES")
        f["message"] = message_name(pt, f["message_id"])  # type: ignore[assignment]
        return _decoded(f)
    if mid == 0x10:
        v = _u32s(payload, ("version",), "NEGOTIATE_PROTOCOL_VERSION")["version"]
        return _decoded({"version": _version(v)})
    if mid in (0x0, 0x1) or (pt == 0x10 and mid in (0x3, 0x4, 0x5)):
        return _raw(payload)
    if pt == 0x10:
        layouts = {0x6: ("skip",), 0x7: ("agent_id",), 0x8: ("notify_enable",),
                   0x9: ("agent_id", "device_id", "flags"),
                   0xA: ("agent_id", "device_id", "protocol_id", "flags"),
                   0xB: ("agent_id", "flags")}
        if mid in layouts:
            return _decoded(_u32s(payload, layouts[mid], message_name(pt, mid)))
    if pt == 0x13:
        layouts = {0x3: ("domain_id",), 0x4: ("domain_id", "level_index"),
                   0x5: ("domain_id", "range_max", "range_min"), 0x6: ("domain_id",),
                   0x7: ("domain_id", "performance_level"), 0x8: ("domain_id",),
                   0x9: ("domain_id", "notify_enable"), 0xA: ("domain_id", "notify_enable"),
                   0xC: ("domain_id",)}
        if mid in layouts:
            return _decoded(_u32s(payload, layouts[mid], message_name(pt, mid)))
    if pt == 0x14:
        if mid == 0x5:
            f = _u32s(payload, ("flags", "clock_id", "rate_low", "rate_high"), "CLOCK_RATE_SET")
            rate = f.pop("rate_low") | f.pop("rate_high") << 32
            return _decoded({"flags": f"{f['flags']:#x}", "async": bool(f["flags"] & 1),
                             "clock_id": f["clock_id"], "rate": rate}, {"rate": "Hz"})
        if mid in (0x3, 0x6, 0x8, 0xB, 0xE):
            return _decoded(_u32s(payload, ("clock_id",), message_name(pt, mid)))
        if mid == 0x7:
            return _decoded(_u32s(payload, ("clock_id", "attributes"), "CLOCK_CONFIG_SET"))
    return _raw(payload)


def _qcom_command(payload: bytes) -> tuple[Decoded, Dialect | None, int | None]:
    header, body = codec.decode_request(payload)
    dialect = Dialect.for_algorithm(header.algo)
    fields: dict[str, Any] = {"algo": algorithm_text(header.algo),
                              "dialect": dialect.value if dialect else None,
                              "param": ParamId.label(header.param_id),
                              "param_id": header.param_id}
    if header.ext_id:
        fields["ext_id"] = header.ext_id
    head = f"[{fields['algo']}] {fields['param']}"
    try:
        body_fields, units = qcom_body(header.param_id, body, dialect or Dialect.V8)
    except DecodeError as exc:
        fields["body_hex"] = body.hex()
        return (Decoded(fields, {}, f"{head} {body.hex()}", str(exc)), dialect,
                header.param_id)
    fields.update(body_fields)
    text = f"{head} {_text(body_fields, units)}".rstrip()
    return Decoded(fields, units, text), dialect, header.param_id


_SCALAR_UNITS = {
    ParamId.ADAPTIVE_LOW_FREQ: "kHz", ParamId.ADAPTIVE_HIGH_FREQ: "kHz",
    ParamId.IPM_CEIL: "instructions/miss", ParamId.IPM_FILTER: "instructions/miss",
    ParamId.FE_STALL_FLOOR: "%", ParamId.BE_STALL_FLOOR: "%", ParamId.WB_PCT: "%",
    ParamId.FREQ_SCALE_PCT: "%", ParamId.FREQ_SCALE_CEIL_MHZ: "MHz",
    ParamId.FREQ_SCALE_FLOOR_MHZ: "MHz", ParamId.SET_MIN_FREQ: "kHz",
    ParamId.SET_MAX_FREQ: "kHz", ParamId.GET_CUR_FREQ: "",
}
_LEVEL_HW = (HwType.DDR_QOS, HwType.DDR_QOS_MOBILE)


def _mem_unit(hw_type: int, khz: str = "kHz", values: tuple[int, ...] = (0,)) -> str:
    """level for a DDR_QOS group programmed with 0/1 (downstream numbering reuses 2/3 for
    kHz groups, protocol.md §2.3), else `khz`."""
    return "level" if hw_type in _LEVEL_HW and all(v <= 1 for v in values) else khz


def qcom_body(param_id: int, body: bytes, dialect: Dialect
              ) -> tuple[dict[str, Any], dict[str, str]]:
    """The param body of a QCOM request as (fields, units); raises DecodeError."""
    try:
        pid = ParamId(param_id)
    except ValueError:
        return ({"body_hex": body.hex()} if body else {}), {}
    if pid in (ParamId.SET_MEM_GROUP, ParamId.SET_MONITOR):
        n = codec.NodeMsg.unpack(body)
        f: dict[str, Any] = {"cpumask": f"{n.cpumask:#x}", "hw_type": HwType.label(n.hw_type)}
        if pid is ParamId.SET_MONITOR:
            f.update(mon_type="compute" if n.mon_type == 1 else
                     ("ipm" if n.mon_type == 0 else n.mon_type), mon_idx=n.mon_idx,
                     name=n.name)
        return f, {}
    if pid in (ParamId.SET_COMMON_EV_MAP, ParamId.SET_GRP_EV_MAP):
        e = codec.EvMapMsg.unpack(body)
        order = (dialect.common_event_order if pid is ParamId.SET_COMMON_EV_MAP
                 else GROUP_EVENT_ORDER)
        events = {(order[i] if i < len(order) else f"slot{i}"): c
                  for i, c in enumerate(e.events)}
        return {"hw_type": HwType.label(e.hw_type), "num_evs": e.num_evs,
                "events": events, "cid_bytes": e.cid_bytes}, {}
    if pid is ParamId.MON_FREQ_MAP:
        m = codec.MapMsg.unpack(body)
        return ({"hw_type": HwType.label(m.hw_type), "mon_idx": m.mon_idx,
                 "nr_rows": m.nr_rows, "rows": [list(r) for r in m.rows]},
                {"rows": "cpu MHz->" + _mem_unit(m.hw_type, "mem MHz",
                                                  tuple(v for _, v in m.rows))})
    if pid in _SCALAR_UNITS:
        s = codec.ScalarMsg.unpack(body)
        unit = _SCALAR_UNITS[pid]
        if pid in (ParamId.SET_MIN_FREQ, ParamId.SET_MAX_FREQ):
            unit = _mem_unit(s.hw_type, "kHz", (s.val,))
        return ({"hw_type": HwType.label(s.hw_type), "mon_idx": s.mon_idx, "val": s.val},
                {"val": unit} if unit else {})
    if pid is ParamId.SAMPLE_MS:
        return {"sample_ms": codec.SampleMs.unpack(body).ms}, {"sample_ms": "ms"}
    if pid is ParamId.SET_EFFECTIVE_FREQ_METHOD:
        return {"method": codec.FreqMethod.unpack(body).method}, {}
    if pid is ParamId.GET_ADAPTIVE_CUR_FREQ:
        return {"hw_type": HwType.label(codec.GetAdaptiveCurFreq.unpack(body).hw_type)}, {}
    return ({"body_hex": body.hex()} if body else {}), {}


# ---- responses, delayed responses, notifications ---------------------------------------

def decode_response(protocol_id: int, message_id: int, values: bytes, *,
                    param_id: int | None = None, request: Decoded | None = None) -> Decoded:
    """A (successful) response's return values, the status word already removed.

    param_id: the QCOM param of the request (for GET replies); request: the decoded
    request (PROTOCOL_ATTRIBUTES of base needs nothing else, GET_CUR_FREQ its hw_type).
    """
    try:
        return _response(protocol_id, message_id, values, param_id, request)
    except DecodeError as exc:
        return _raw(values, str(exc))


def _response(pt: int, mid: int, values: bytes, param_id: int | None,
              request: Decoded | None) -> Decoded:
    if not values:
        return Decoded()
    if mid == 0x0:
        v = _u32s(values, ("version",), "PROTOCOL_VERSION")["version"]
        return _decoded({"version": _version(v)})
    if pt == 0x10:
        if mid == 0x1:
            a = BaseAttributes.unpack(values)
            return _decoded({"num_protocols": a.num_protocols, "num_agents": a.num_agents})
        if mid in (0x3, 0x4):
            return _decoded({"name": ShortName.unpack(values).name})
        if mid == 0x5:
            impl = _u32s(values, ("implementation_version",), "IMPLEMENTATION_VERSION")
            return _decoded({"implementation_version":
                             f"{impl['implementation_version']:#x}"})
        if mid == 0x6:
            plist = ProtocolList.unpack(values)
            return _decoded({"num_protocols": len(plist.protocols),
                             "protocols": [f"{p:#04x}" for p in plist.protocols],
                             "names": [protocol_name(p) for p in plist.protocols]})
        if mid == 0x7:
            info = AgentInfo.unpack(values)
            return _decoded({"agent_id": info.agent_id, "name": info.name})
    if mid in (0x1, 0x2):
        v = _u32s(values, ("attributes",), message_name(pt, mid))["attributes"]
        return _decoded({"attributes": f"{v:#010x}"})
    if pt == QCOM_PROTOCOL_ID and param_id is not None:
        if param_id == ParamId.GET_CUR_FREQ:
            hw = (request.fields.get("hw_type") if request else None) or ""
            unit = "level" if hw in ("ddr_qos", "ddr_qos_mobile") else "kHz"
            return _decoded({"value": codec.FreqReply.unpack(values).value}, {"value": unit})
        if param_id == ParamId.GET_ADAPTIVE_CUR_FREQ:
            return _decoded({"value": codec.FreqReply.unpack(values).value}, {"value": "kHz"})
        if param_id == ParamId.GET_TIMESTAMP:
            return _decoded({"ns": codec.Timestamp.unpack(values).ns}, {"ns": "ns"})
    if pt == 0x13 and mid == 0x8:
        return _decoded(_u32s(values, ("performance_level",), "PERFORMANCE_LEVEL_GET"))
    if pt == 0x14 and mid == 0x6:
        lo, hi = struct.unpack_from("<II", values) if len(values) >= 8 else (None, None)
        if lo is None or hi is None:
            raise DecodeError("CLOCK_RATE_GET reply needs 8 bytes", offset=len(values),
                              field="rate")
        return _decoded({"rate": lo | hi << 32}, {"rate": "Hz"})
    return _raw(values)


def decode_delayed(protocol_id: int, message_id: int, values: bytes) -> Decoded:
    """A delayed response's values (CLOCK_RATE_SET_COMPLETE: clock_id, rate in Hz)."""
    try:
        if protocol_id == 0x14 and message_id == 0x5:
            f = _u32s(values, ("clock_id", "rate_low", "rate_high"), "CLOCK_RATE_SET_COMPLETE")
            return _decoded({"clock_id": f["clock_id"],
                             "rate": f["rate_low"] | f["rate_high"] << 32}, {"rate": "Hz"})
    except DecodeError as exc:
        return _raw(values, str(exc))
    return _raw(values)


def decode_notification(protocol_id: int, message_id: int, payload: bytes) -> Decoded:
    """A notification's payload (perf level/limits changed, clock rate changed, base error)."""
    layouts = {
        (0x13, 0x0): ("agent_id", "domain_id", "range_max", "range_min"),
        (0x13, 0x1): ("agent_id", "domain_id", "performance_level"),
        (0x10, 0x0): ("agent_id", "error_status"),
    }
    try:
        if (protocol_id, message_id) in layouts:
            return _decoded(_u32s(payload, layouts[(protocol_id, message_id)],
                                  message_name(protocol_id, message_id, "notification")))
        if protocol_id == 0x14 and message_id in (0x0, 0x1):
            f = _u32s(payload, ("agent_id", "clock_id", "rate_low", "rate_high"), "CLOCK_RATE")
            return _decoded({"agent_id": f["agent_id"], "clock_id": f["clock_id"],
                             "rate": f["rate_low"] | f["rate_high"] << 32}, {"rate": "Hz"})
    except DecodeError as exc:
        return _raw(payload, str(exc))
    return _raw(payload)
