"""What the kernel programmed, as a memlat SoC profile (YAML) and a diff against a built-in.

The QCOM commands of a boot trace carry every number the firmware keeps (protocol.md
§3.5 / §4.4): the event maps, the groups and their cpumasks, each monitor's mask, type,
name, scalar knobs and map, the min/max per group, the sample period and the effective
frequency method. Commands the firmware refused are not programmed and are left out.

What the wire does not carry comes from a base profile (the built-in one of the same SoC,
found by `match_profile` or named by the user): the SoC identity, the CPUs' clusters and
maxima, group names and OPP ladders. Without a base, the CPUs are numbered from the masks
(cluster = the first IPM monitor covering the CPU, max MHz = the highest CPU MHz of the
maps covering it) and a group's ladder is its min, max and the memory values of its maps.
A base ladder is kept only when min, max and every map value fit inside it.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from memlat.agent.probe import build_sequence
from memlat.config.model import OPTIONAL_KNOBS, SocConfig, parse_soc
from memlat.config.profiles import list_profiles, load_profile
from memlat.errors import ConfigError, DecodeError
from memlat.qcom import codec
from memlat.qcom.dialect import Dialect
from memlat.qcom.ids import HwType, ParamId

_LEVEL_HW = (int(HwType.DDR_QOS), int(HwType.DDR_QOS_MOBILE))
_KNOB_PARAMS = {ParamId[p]: attr for attr, p in OPTIONAL_KNOBS}


@dataclass(frozen=True, slots=True)
class Programmed:
    """One QCOM command that took effect: param id, body bytes and the dialect."""

    param_id: int
    body: bytes
    dialect: Dialect


@dataclass
class _Mon:
    cpumask: int = 0
    mon_type: int = 0
    name: str = ""
    scalars: dict[str, int] = field(default_factory=dict)
    rows: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class _Group:
    hw_type: int
    cpumask: int = 0
    events: tuple[int, ...] = ()
    adaptive_low: int | None = None
    adaptive_high: int | None = None
    min: int | None = None
    max: int | None = None
    monitors: dict[int, _Mon] = field(default_factory=dict)


@dataclass
class Reconstruction:
    """The rebuilt profile (`soc`), its YAML, the base it borrowed from, and notes."""

    soc: SocConfig
    base: SocConfig | None
    notes: list[str] = field(default_factory=list)

    def yaml(self) -> str:
        """The profile as YAML, loadable by `--soc-file`."""
        return profile_yaml(self.soc, self.notes)


def programmed_from_payloads(payloads: Iterable[bytes]) -> list[Programmed]:
    """QCOM request payloads (16-byte header + body) -> Programmed commands.

    Raises DecodeError (byte offset) for a payload shorter than the header.
    """
    out = []
    for payload in payloads:
        header, body = codec.decode_request(payload)
        dialect = Dialect.for_algorithm(header.algo) or Dialect.V8
        out.append(Programmed(header.param_id, body, dialect))
    return out


def _collect(commands: list[Programmed]) -> tuple[dict[str, Any], dict[int, _Group]]:
    glob: dict[str, Any] = {}
    groups: dict[int, _Group] = {}

    def group(hw: int) -> _Group:
        return groups.setdefault(hw, _Group(hw))

    for cmd in commands:
        pid, body, d = cmd.param_id, cmd.body, cmd.dialect
        glob.setdefault("dialect", d)
        if pid == ParamId.SET_COMMON_EV_MAP:
            glob["common"] = codec.EvMapMsg.unpack(body).events
        elif pid == ParamId.SET_MEM_GROUP:
            node = codec.NodeMsg.unpack(body)
            group(node.hw_type).cpumask = node.cpumask
        elif pid == ParamId.SET_GRP_EV_MAP:
            ev = codec.EvMapMsg.unpack(body)
            group(ev.hw_type).events = ev.events
        elif pid == ParamId.SET_MONITOR:
            node = codec.NodeMsg.unpack(body)
            mon = group(node.hw_type).monitors.setdefault(node.mon_idx, _Mon())
            mon.cpumask, mon.mon_type, mon.name = node.cpumask, node.mon_type, node.name
        elif pid == ParamId.MON_FREQ_MAP:
            m = codec.MapMsg.unpack(body)
            group(m.hw_type).monitors.setdefault(m.mon_idx, _Mon()).rows = list(m.rows)
        elif pid in (ParamId.ADAPTIVE_LOW_FREQ, ParamId.ADAPTIVE_HIGH_FREQ):
            s = codec.ScalarMsg.unpack(body)
            attr = "adaptive_low" if pid == ParamId.ADAPTIVE_LOW_FREQ else "adaptive_high"
            setattr(group(s.hw_type), attr, s.val)
        elif pid in (ParamId.SET_MIN_FREQ, ParamId.SET_MAX_FREQ):
            s = codec.ScalarMsg.unpack(body)
            setattr(group(s.hw_type), "min" if pid == ParamId.SET_MIN_FREQ else "max", s.val)
        elif pid in (ParamId.IPM_CEIL, ParamId.BE_STALL_FLOOR) or pid in _KNOB_PARAMS:
            s = codec.ScalarMsg.unpack(body)
            mon = group(s.hw_type).monitors.setdefault(s.mon_idx, _Mon())
            key = {ParamId.IPM_CEIL: "ipm_ceil", ParamId.BE_STALL_FLOOR: "be_stall_floor"}.get(
                ParamId(pid), _KNOB_PARAMS.get(ParamId(pid), ""))
            mon.scalars[key] = s.val
        elif pid == ParamId.SAMPLE_MS:
            glob["sample_ms"] = codec.SampleMs.unpack(body).ms
        elif pid == ParamId.SET_EFFECTIVE_FREQ_METHOD:
            glob["freq_method"] = codec.FreqMethod.unpack(body).method
    return glob, groups


def _is_level(g: _Group, base_group: Any) -> bool:
    """A level group: the base says so, else hw_type 2/3 with only 0/1 values programmed
    (downstream numbering reuses 2 for L3 in kHz, protocol.md §2.3)."""
    if base_group is not None:
        return bool(base_group.is_level)
    values = {v for v in (g.min, g.max) if v is not None}
    values |= {v2 for mon in g.monitors.values() for _, v2 in mon.rows}
    return g.hw_type in _LEVEL_HW and values <= {0, 1}


def _ladder(g: _Group, base_group: Any, notes: list[str], name: str) -> list[int]:
    level = _is_level(g, base_group)
    values = {v for v in (g.min, g.max) if v is not None}
    mem = [v2 for mon in g.monitors.values() for _, v2 in mon.rows]
    if base_group is not None:
        lad = list(base_group.ladder)
        lo_mhz, hi_mhz = (lad[0], lad[-1]) if level else (lad[0] // 1000, -(-lad[-1] // 1000))
        if all(lad[0] <= v <= lad[-1] for v in values) and all(lo_mhz <= v <= hi_mhz
                                                               for v in mem):
            return lad
        notes.append(f"group {name}: the programmed values leave the base ladder; "
                     "ladder rebuilt from the trace")
    scale = 1 if level else 1000
    return sorted(values | {v * scale for v in mem})


def reconstruct(commands: list[Programmed], base: SocConfig | None = None, *,
                source: str = "trace") -> Reconstruction:
    """Rebuild the profile the commands program (see the module docstring).

    Raises ConfigError (naming `source`) when the commands do not make a valid profile,
    e.g. a trace without SET_MEM_GROUP / SET_MONITOR.
    """
    notes: list[str] = []
    try:
        glob, groups = _collect(commands)
    except DecodeError as exc:
        raise ConfigError(f"undecodable QCOM command: {exc}", source=source) from exc
    if not groups:
        raise ConfigError("no memory group was programmed (no SET_MEM_GROUP / SET_MONITOR "
                          "succeeded)", source=source)
    d: Dialect = glob.get("dialect", Dialect.V8)
    base_d = base.with_dialect(d.value) if base is not None else None
    all_mon_masks = 0
    for g in groups.values():
        for mon in g.monitors.values():
            all_mon_masks |= mon.cpumask
    group_masks = 0
    for g in groups.values():
        group_masks |= g.cpumask
    ncpus = group_masks.bit_length() if group_masks else all_mon_masks.bit_length()
    if base_d is not None and (not group_masks or base_d.ncpus == ncpus):
        ncpus = base_d.ncpus
        cpus = [c.model_dump(exclude_none=True) for c in base_d.cpus]
    else:
        cpus = _cpus(ncpus, groups)
        if base_d is not None:
            notes.append(f"the trace programs {ncpus} CPUs, base {base_d.name} has "
                         f"{base_d.ncpus}: CPUs rebuilt from the masks")
    possible = (1 << ncpus) - 1
    data: dict[str, Any] = {
        "soc": _identity(base_d, source),
        "dialect": d.value,
    }
    if all_mon_masks & ~possible or (base_d is not None and base_d.static_hw_masks):
        data["static_hw_masks"] = True
    data["cpus"] = cpus
    data["sample_ms"] = glob.get("sample_ms", base_d.sample_ms if base_d else 4)
    data["freq_method"] = glob.get("freq_method", base_d.freq_method if base_d else 1)
    data["common_events"] = _common(glob.get("common", ()), d, base_d)
    base_groups = {g.hw_type: g for g in base_d.groups} if base_d else {}
    data["groups"] = [_group(g, base_groups.get(hw), d, possible, notes)
                      for hw, g in groups.items()]
    soc = parse_soc(data, source=source)
    return Reconstruction(soc, base, notes)


def _identity(base: SocConfig | None, source: str) -> dict[str, Any]:
    if base is None:
        return {"name": "from-trace", "description": f"reconstructed from {source}",
                "source": f"memlat decode {source}"}
    ident = base.soc.model_dump()
    ident["source"] = f"memlat decode {source} (identity, CPUs and ladders from {base.name})"
    return ident


def _cpus(ncpus: int, groups: dict[int, _Group]) -> list[dict[str, Any]]:
    cluster = [-1] * ncpus
    top = [0] * ncpus
    masks: list[int] = []
    for g in groups.values():
        for mon in g.monitors.values():
            if mon.mon_type == 0 and mon.cpumask not in masks:
                masks.append(mon.cpumask)
            for cpu in range(ncpus):
                if mon.cpumask >> cpu & 1 and mon.rows:
                    top[cpu] = max(top[cpu], max(v1 for v1, _ in mon.rows))
    for i, mask in enumerate(masks):
        for cpu in range(ncpus):
            if mask >> cpu & 1 and cluster[cpu] < 0:
                cluster[cpu] = i
    out = []
    for cpu in range(ncpus):
        entry: dict[str, Any] = {"id": cpu, "cluster": max(cluster[cpu], 0)}
        if top[cpu]:
            entry["max_mhz"] = top[cpu]
        out.append(entry)
    return out


def _common(events: tuple[int, ...], d: Dialect, base: SocConfig | None) -> dict[str, int]:
    out = base.common_events.model_dump() if base else {}
    for slot, cid in zip(d.common_event_order, events, strict=False):
        out[slot] = cid
    return out


def _group(g: _Group, base_group: Any, d: Dialect, possible: int,
           notes: list[str]) -> dict[str, Any]:
    level = _is_level(g, base_group)
    name = base_group.name if base_group is not None else HwType.label(g.hw_type).replace("_", "-")
    out: dict[str, Any] = {"name": name, "hw_type": g.hw_type,
                           "unit": "level" if level else "khz",
                           "ladder": _ladder(g, base_group, notes, name)}
    if g.min is not None:
        out["min"] = g.min
    if g.max is not None:
        out["max"] = g.max
    if d is Dialect.V8 and g.cpumask and g.cpumask != possible:
        out["cpus"] = g.cpumask
    elif d is Dialect.RFC2024 and base_group is not None and base_group.cpus is not None:
        out["cpus"] = base_group.cpus
    if g.events:
        out["events"] = dict(zip(("miss", "wb", "acc"), g.events, strict=False))
    if g.adaptive_low is not None:
        out["adaptive_low_khz"] = g.adaptive_low
    if g.adaptive_high is not None:
        out["adaptive_high_khz"] = g.adaptive_high
    mons = []
    for idx in sorted(g.monitors):
        mon = g.monitors[idx]
        m: dict[str, Any] = {}
        default_name = f"monitor-{idx}" if d is Dialect.RFC2024 else f"mon_{idx}"
        if mon.name and mon.name != default_name:
            m["name"] = mon.name
        m["cpus"] = mon.cpumask
        if mon.mon_type == 1:
            m["compute"] = True
        m.update(mon.scalars)
        m["map"] = [list(r) for r in mon.rows]
        mons.append(m)
    out["monitors"] = mons
    return out


# ---- matching, YAML and diff ------------------------------------------------------------

def match_profile(payloads: list[bytes], dialect: Dialect | None) -> tuple[str | None, int]:
    """The built-in profile whose probe sequence shares the most payloads with `payloads`.

    Returns (name, number of identical payloads); (None, 0) when nothing matches.
    """
    best: tuple[str | None, int] = (None, 0)
    traced: dict[bytes, int] = {}
    for p in payloads:
        traced[p] = traced.get(p, 0) + 1
    for name in list_profiles():
        soc = load_profile(name)
        try:
            seq = build_sequence(soc, dialect or Dialect(soc.dialect))
        except (ConfigError, ValueError):
            continue
        left = dict(traced)
        score = 0
        for msg in seq:
            if left.get(msg.payload, 0) > 0:
                left[msg.payload] -= 1
                score += 1
        if score > best[1]:
            best = (name, score)
    return best


class _Dumper(yaml.SafeDumper):
    pass


def profile_yaml(soc: SocConfig, notes: Iterable[str] = ()) -> str:
    """A profile as YAML: leaf lists inline, like the built-in profiles."""
    data = soc.model_dump(mode="json", exclude_none=True)
    for g in data["groups"]:
        for m in g["monitors"]:
            m["map"] = [list(r) for r in m["map"]]
    buf = io.StringIO()
    buf.write("# SoC profile reconstructed by `memlat decode` from what the kernel programmed\n")
    for note in notes:
        buf.write(f"# note: {note}\n")
    yaml.dump(data, buf, Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=100)
    return buf.getvalue()


def _flatten(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{path}.{k}" if path else str(k), out)
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        for i, v in enumerate(value):
            _flatten(v, f"{path}[{i}]", out)
    else:
        out[path] = value


def diff_profiles(programmed: SocConfig, builtin: SocConfig) -> list[str]:
    """Field-by-field differences of what each profile programs, e.g.
    `groups[0].monitors[1].ipm_ceil: built-in 20000000, trace 15000000`.

    Both sides go through the same wire round trip (the built-in's own probe sequence is
    reconstructed too), so fields the wire does not carry and defaults never differ.
    """
    d = Dialect(programmed.dialect)
    ref = reconstruct(programmed_from_payloads(m.payload for m in build_sequence(builtin, d)),
                      builtin, source=builtin.name).soc
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    skip = ("soc.",)
    _flatten(ref.model_dump(), "", a)
    _flatten(programmed.model_dump(), "", b)
    out = []
    for key in list(dict.fromkeys([*a, *b])):
        if key.startswith(skip):
            continue
        va, vb = a.get(key, "(absent)"), b.get(key, "(absent)")
        if va != vb:
            out.append(f"{key}: built-in {va}, trace {vb}")
    return out
