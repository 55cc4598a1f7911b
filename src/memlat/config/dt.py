"""Device-tree input: the 2024 RFC memlat binding and the qcom,scmi-memlat binding.

A .dts file is run through the C preprocessor (for #include and #define, as the kernel
build does), parsed with dtlib, and turned into a SocConfig:

* RFC binding (protocol.md §4.3): `protocol@80 { memlat { memory@N { reg; freq-table-khz;
  monitor-N { qcom,cpulist; qcom,cpufreq-memfreq-tbl; qcom,compute-mon; } } } }` gives
  dialect rfc2024 with the RFC's fixed values (ipm 20000000 or 0, sample_ms 8, common
  events [2, 0, 0xFF, 0xFF], group events [5, 0xFF, 0xFF]).
* qcom,scmi-memlat binding (bindings/qcom,scmi-memlat.yaml): the RFC reviewers' answer,
  with CPU phandles, OPP tables, *-frequency-hz limits and a cpu-OPP to mem-OPP map.

Every error is a ConfigError naming the file and the node path and property.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devicetree import dtlib

from memlat.config.model import SocConfig, parse_soc
from memlat.config.profiles import profile_for_compatible
from memlat.errors import ConfigError

RFC_IPM_CEIL = 20_000_000  # hard-coded by the RFC driver (protocol.md §4.3)
RFC_SAMPLE_MS = 8
NEW_COMPATIBLE = "qcom,scmi-memlat"
DEFAULT_IPM_CEIL = 20_000_000
DEFAULT_COMMON_EVENTS = (2, 0, 1, 0xFF, 3)  # Hamoa/Glymur (protocol.md §3.2)
DEFAULT_GROUP_EVENTS = (5, 0xFF, 0xFF)
# RFC groups are named after their hw_type (protocol.md §2.3; devfreq names of §3.1)
HW_TYPE_NAMES = {0: "ddr", 1: "llcc", 2: "ddr-qos", 3: "ddr-qos-mobile"}


# ---- preprocessing and parsing -----------------------------------------------------------


def preprocess(path: Path, include_dirs: tuple[Path, ...] = ()) -> str:
    """Run the C preprocessor over `path` the way the kernel's dtc rule does; return text.

    Line markers are kept so dtlib reports errors against the original files.
    """
    cpp = shutil.which("cpp")
    if cpp is None:
        raise ConfigError("the C preprocessor `cpp` is not installed", source=str(path))
    cmd = [cpp, "-nostdinc", "-undef", "-D__DTS__", "-x", "assembler-with-cpp",
           f"-I{path.parent}"]
    cmd += [f"-I{d}" for d in include_dirs]
    cmd.append(str(path))
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        first = next((ln for ln in proc.stderr.splitlines() if "error" in ln), proc.stderr)
        raise ConfigError(f"preprocessing failed: {first.strip()}", source=str(path))
    return proc.stdout


_UNDEFINED_LABEL = re.compile(r"^(/\S*): undefined node label '([^']+)'")


def parse_dts(path: Path | str, include_dirs: tuple[Path, ...] = ()) -> dtlib.DT:
    """Preprocess and parse a .dts file; syntax errors and undefined labels become
    ConfigErrors naming the file (dtlib adds the line)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("no such device-tree file", source=str(path))
    text = preprocess(path, include_dirs)
    with tempfile.NamedTemporaryFile("w", suffix=".dts", delete=True) as tmp:
        tmp.write(text)
        tmp.flush()
        try:
            return dtlib.DT(tmp.name)
        except dtlib.DTError as exc:
            m = _UNDEFINED_LABEL.match(str(exc))
            if m:  # dtlib names the node holding the reference, not the file
                raise ConfigError(f"reference &{m.group(2)} to an undefined label (bad "
                                  "phandle)", source=str(path), location=m.group(1)) from None
            raise ConfigError(f"device tree does not parse: {exc}", source=str(path)) from None


# ---- property helpers ----------------------------------------------------------------------


@dataclass
class _Ctx:
    """Parsing context: the file, the tree, and where each model field came from."""

    source: str
    dt: dtlib.DT
    origins: dict[str, tuple[str, str]] = field(default_factory=dict)

    def err(self, node: dtlib.Node, prop: str | None, message: str) -> ConfigError:
        loc = node.path if prop is None else f"{node.path}:{prop}"
        return ConfigError(message, source=self.source, location=loc)

    def prop(self, node: dtlib.Node, name: str) -> dtlib.Property:
        if name not in node.props:
            raise self.err(node, name, "required property is missing")
        return node.props[name]

    def cells(self, node: dtlib.Node, name: str, *, required: bool = True) -> list[int] | None:
        if name not in node.props:
            if required:
                raise self.err(node, name, "required property is missing")
            return None
        value = node.props[name].value
        if len(value) % 4:
            raise self.err(node, name, f"expected 32-bit cells, got {len(value)} bytes")
        return [int.from_bytes(value[i:i + 4], "big") for i in range(0, len(value), 4)]

    def u32(self, node: dtlib.Node, name: str, default: int | None = None) -> int:
        """One cell; `default` when absent, or an error when no default is given."""
        cells = self.cells(node, name, required=default is None)
        if cells is None:
            assert default is not None
            return default
        if len(cells) != 1:
            raise self.err(node, name, f"expected one cell, got {len(cells)}")
        return cells[0]

    def number(self, node: dtlib.Node, name: str) -> int | None:
        """A 32- or 64-bit number (<n> or /bits/ 64 <n> or <hi lo>), None when absent."""
        if name not in node.props:
            return None
        value = node.props[name].value
        if len(value) not in (4, 8):
            raise self.err(node, name, f"expected a 32- or 64-bit number, got {len(value)} bytes")
        return int.from_bytes(value, "big")

    def phandles(self, node: dtlib.Node, name: str) -> list[dtlib.Node]:
        out = []
        for i, ph in enumerate(self.cells(node, name) or []):
            target = self.dt.phandle2node.get(ph)
            if target is None:
                raise self.err(node, name, f"entry {i}: phandle {ph:#x} does not point to "
                               "any node")
            out.append(target)
        return out


# ---- CPUs ------------------------------------------------------------------------------------


@dataclass
class _Cpus:
    """Logical CPU numbering of a tree (the way of_cpu_node_to_id() sees it)."""

    nodes: list[dtlib.Node]
    cluster: dict[int, int]
    max_mhz: dict[int, int | None]

    def ids_of(self, ctx: _Ctx, node: dtlib.Node, prop: str, targets: list[dtlib.Node]) -> int:
        mask = 0
        for i, target in enumerate(targets):
            if target not in self.nodes:
                raise ctx.err(node, prop, f"entry {i}: {target.path} is not a CPU node "
                              "(a /cpus child with device_type = \"cpu\")")
            mask |= 1 << self.nodes.index(target)
        return mask


def _is_cpu(node: dtlib.Node) -> bool:
    dtype = node.props.get("device_type")
    return dtype is not None and dtype.value.rstrip(b"\0") == b"cpu"


def _cpus(ctx: _Ctx) -> _Cpus:
    # Logical ids: arm64 numbers CPUs in /cpus order (the boot CPU, assumed first, is 0);
    # of_cpu_node_to_id() then matches the phandle's node against each logical CPU's node.
    try:
        cpus_node = ctx.dt.get_node("/cpus")
    except dtlib.DTError:
        raise ConfigError("the tree has no /cpus node", source=ctx.source,
                          location="/cpus") from None
    nodes = [n for n in cpus_node.nodes.values() if _is_cpu(n)]
    if not nodes:
        raise ctx.err(cpus_node, None, "no CPU nodes (device_type = \"cpu\") under /cpus")
    cluster = {i: 0 for i in range(len(nodes))}
    cpu_map = cpus_node.nodes.get("cpu-map")
    if cpu_map is not None:
        clusters = [n for n in cpu_map.nodes.values() if n.name.startswith("cluster")]
        for ci, cl in enumerate(clusters):
            for sub in cl.node_iter():
                if "cpu" in sub.props:
                    target = ctx.phandles(sub, "cpu")
                    for t in target:
                        if t in nodes:
                            cluster[nodes.index(t)] = ci
    max_mhz: dict[int, int | None] = {}
    for i, n in enumerate(nodes):
        top = None
        if "operating-points-v2" in n.props:
            table = ctx.phandles(n, "operating-points-v2")[0]
            hz = [h for h in (_opp_hz(ctx, o) for o in _opps(table)) if h is not None]
            top = math.ceil(max(hz) / 1_000_000) if hz else None
        max_mhz[i] = top
    return _Cpus(nodes, cluster, max_mhz)


# ---- finding the memlat node ---------------------------------------------------------------


def _find_memlat(ctx: _Ctx) -> tuple[dtlib.Node, bool]:
    """The memlat node under an SCMI protocol@80 node, and whether it uses the new binding."""
    found = []
    for node in ctx.dt.node_iter():
        if node.name.split("@")[0] != "memlat" and NEW_COMPATIBLE not in _strings(node,
                                                                                 "compatible"):
            continue
        proto = node.parent
        if proto is not None and proto.name.startswith("protocol@"):
            reg = ctx.cells(proto, "reg", required=False)
            if reg and reg[0] == 0x80:
                found.append(node)
    if not found:
        raise ConfigError("no memlat node under an SCMI protocol@80 node (protocol.md §4.3)",
                          source=ctx.source, location="/")
    node = found[0]
    return node, NEW_COMPATIBLE in _strings(node, "compatible")


def _strings(node: dtlib.Node, name: str) -> list[str]:
    prop = node.props.get(name)
    if prop is None:
        return []
    return [s for s in prop.value.decode("utf-8", "replace").split("\0") if s]


def _identity(ctx: _Ctx) -> dict[str, Any]:
    root = ctx.dt.root
    compatible = _strings(root, "compatible")
    model = _strings(root, "model")
    name = profile_for_compatible(compatible) or Path(ctx.source).stem
    return {"name": name, "compatible": compatible,
            "description": model[0] if model else "", "source": ctx.source}


# ---- RFC binding (protocol.md §4.3) --------------------------------------------------------


def _rfc(ctx: _Ctx, memlat: dtlib.Node, cpus: _Cpus) -> dict[str, Any]:
    groups = []
    for gi, gnode in enumerate(memlat.nodes.values()):
        hw_type = ctx.cells(gnode, "reg")
        table = ctx.cells(gnode, "freq-table-khz")
        assert hw_type is not None and table is not None
        if len(table) != 2:
            raise ctx.err(gnode, "freq-table-khz", f"expected <min max> kHz, got {len(table)} "
                          "cells")
        gpath = f"groups[{gi}]"
        ctx.origins[gpath] = (gnode.path, "reg")
        for fld in ("ladder", "min", "max"):
            ctx.origins[f"{gpath}.{fld}"] = (gnode.path, "freq-table-khz")
        level = table[1] <= 1
        monitors = []
        for mi, mnode in enumerate(gnode.nodes.values()):
            mpath = f"{gpath}.monitors[{mi}]"
            ctx.origins[mpath] = (mnode.path, "")
            ctx.origins[f"{mpath}.cpus"] = (mnode.path, "qcom,cpulist")
            ctx.origins[f"{mpath}.map"] = (mnode.path, "qcom,cpufreq-memfreq-tbl")
            mask = cpus.ids_of(ctx, mnode, "qcom,cpulist", ctx.phandles(mnode, "qcom,cpulist"))
            flat = ctx.cells(mnode, "qcom,cpufreq-memfreq-tbl")
            assert flat is not None
            if len(flat) % 2:
                raise ctx.err(mnode, "qcom,cpufreq-memfreq-tbl",
                              f"expected <cpu-kHz mem-kHz> pairs, got {len(flat)} cells")
            compute = "qcom,compute-mon" in mnode.props
            # v1 = cpu kHz / 1000, v2 = mem kHz / 1000 (levels pass through), §4.3
            rows = [(flat[i] // 1000, flat[i + 1] // 1000 if flat[i + 1] > 1 else flat[i + 1])
                    for i in range(0, len(flat), 2)]
            monitors.append({"cpus": mask, "compute": compute,
                             "ipm_ceil": 0 if compute else RFC_IPM_CEIL, "map": rows})
        name = HW_TYPE_NAMES.get(hw_type[0], gnode.name.replace("@", "-"))
        groups.append({"name": name, "hw_type": hw_type[0],
                       "unit": "level" if level else "khz", "ladder": table,
                       "min": table[0], "max": table[1], "monitors": monitors})
    return {"dialect": "rfc2024", "sample_ms": RFC_SAMPLE_MS, "freq_method": 1,
            "common_events": {"inst": 2, "cyc": 0, "const_cyc": 0xFF, "fe_stall": 0xFF,
                              "be_stall": 0xFF},
            "groups": groups}


# ---- qcom,scmi-memlat binding --------------------------------------------------------------


def _opps(table: dtlib.Node) -> list[dtlib.Node]:
    return [n for n in table.nodes.values()
            if {"opp-hz", "opp-peak-kBps", "opp-level"} & set(n.props)]


def _opp_hz(ctx: _Ctx, opp: dtlib.Node) -> int | None:
    return ctx.number(opp, "opp-hz")


def _opp_table(ctx: _Ctx, node: dtlib.Node, prop: str) -> dtlib.Node:
    targets = ctx.phandles(node, prop)
    if len(targets) != 1:
        raise ctx.err(node, prop, f"expected one phandle, got {len(targets)}")
    table = targets[0]
    if "operating-points-v2" not in _strings(table, "compatible"):
        raise ctx.err(node, prop, f"{table.path} is not an OPP table "
                      "(compatible = \"operating-points-v2\")")
    if not _opps(table):
        raise ctx.err(table, None, "OPP table has no OPPs")
    return table


def _group_opp_value(ctx: _Ctx, gnode: dtlib.Node, opp: dtlib.Node, width: int | None,
                     unit: str) -> int:
    """An OPP of a group table as a ladder value: kHz, or a level."""
    if unit == "level":
        return ctx.u32(opp, "opp-level")
    hz = ctx.number(opp, "opp-hz")
    if hz is not None:
        return hz // 1000
    kbps = ctx.number(opp, "opp-peak-kBps")
    if kbps is None:
        raise ctx.err(opp, "opp-hz", "OPP has neither opp-hz nor opp-peak-kBps")
    if not width:
        raise ctx.err(gnode, "qcom,bus-width-bytes", "required when the OPP table uses "
                      "opp-peak-kBps (kHz = kBps / width)")
    return kbps // width


def _new(ctx: _Ctx, memlat: dtlib.Node, cpus: _Cpus) -> dict[str, Any]:
    common = ctx.cells(memlat, "qcom,common-events", required=False) or list(
        DEFAULT_COMMON_EVENTS)
    if len(common) != 5:
        raise ctx.err(memlat, "qcom,common-events", f"expected 5 cells [INST CYC CONST_CYC "
                      f"FE_STALL BE_STALL], got {len(common)}")
    ctx.origins["sample_ms"] = (memlat.path, "qcom,sample-period-ms")
    ctx.origins["freq_method"] = (memlat.path, "qcom,effective-freq-method")
    ctx.origins["common_events"] = (memlat.path, "qcom,common-events")
    groups = []
    gnodes = [n for n in memlat.nodes.values() if "reg" in n.props]
    for gi, gnode in enumerate(gnodes):
        gpath = f"groups[{gi}]"
        hw = ctx.u32(gnode, "reg")
        table = _opp_table(ctx, gnode, "operating-points-v2")
        opps = _opps(table)
        unit = "level" if all("opp-level" in o.props for o in opps) else "khz"
        width = ctx.u32(gnode, "qcom,bus-width-bytes", default=0)
        values = {o: _group_opp_value(ctx, gnode, o, width, unit) for o in opps}
        ladder = sorted(values.values())
        ctx.origins[gpath] = (gnode.path, "")
        ctx.origins[f"{gpath}.hw_type"] = (gnode.path, "reg")
        ctx.origins[f"{gpath}.ladder"] = (table.path, "")
        ctx.origins[f"{gpath}.cpus"] = (gnode.path, "cpus")
        ctx.origins[f"{gpath}.events"] = (gnode.path, "qcom,group-events")
        lo_prop, hi_prop = (("qcom,min-level", "qcom,max-level") if unit == "level" else
                            ("qcom,min-frequency-hz", "qcom,max-frequency-hz"))
        ctx.origins[f"{gpath}.min"] = (gnode.path, lo_prop)
        ctx.origins[f"{gpath}.max"] = (gnode.path, hi_prop)
        lo, hi = ctx.number(gnode, lo_prop), ctx.number(gnode, hi_prop)
        if unit == "khz":
            lo = None if lo is None else lo // 1000
            hi = None if hi is None else hi // 1000
        events = ctx.cells(gnode, "qcom,group-events", required=False) or list(
            DEFAULT_GROUP_EVENTS)
        if len(events) != 3:
            raise ctx.err(gnode, "qcom,group-events", f"expected 3 cells [MISS WB ACC], got "
                          f"{len(events)}")
        gmask = None
        if "cpus" in gnode.props:
            gmask = cpus.ids_of(ctx, gnode, "cpus", ctx.phandles(gnode, "cpus"))
        monitors = [_new_monitor(ctx, gnode, f"{gpath}.monitors[{mi}]", mnode, cpus, table,
                                 values)
                    for mi, mnode in enumerate(gnode.nodes.values())]
        name = _strings(gnode, "label")
        groups.append({"name": name[0] if name else gnode.name.split("@")[0],
                       "hw_type": hw, "unit": unit, "ladder": ladder, "min": lo, "max": hi,
                       "cpus": gmask,
                       "events": {"miss": events[0], "wb": events[1], "acc": events[2]},
                       "monitors": monitors})
    if not groups:
        raise ctx.err(memlat, None, "no memory group nodes (children with reg)")
    return {"dialect": "v8",
            "sample_ms": ctx.u32(memlat, "qcom,sample-period-ms", default=4),
            "freq_method": ctx.u32(memlat, "qcom,effective-freq-method", default=1),
            "common_events": dict(zip(("inst", "cyc", "const_cyc", "fe_stall", "be_stall"),
                                      common, strict=True)),
            "groups": groups}


# property -> (model field, conversion)
_MONITOR_KNOBS = {
    "qcom,be-stall-floor-percent": "be_stall_floor",
    "qcom,fe-stall-floor-percent": "fe_stall_floor",
    "qcom,wb-percent": "wb_pct",
    "qcom,ipm-filter": "ipm_filter",
    "qcom,freq-scale-percent": "freq_scale_pct",
}
_MONITOR_HZ_KNOBS = {
    "qcom,freq-scale-floor-hz": "freq_scale_floor_mhz",
    "qcom,freq-scale-ceil-hz": "freq_scale_ceil_mhz",
}


def _new_monitor(ctx: _Ctx, gnode: dtlib.Node, mpath: str, mnode: dtlib.Node, cpus: _Cpus,
                 table: dtlib.Node, values: dict[dtlib.Node, int]) -> dict[str, Any]:
    ctx.origins[mpath] = (mnode.path, "")
    ctx.origins[f"{mpath}.cpus"] = (mnode.path, "cpus")
    ctx.origins[f"{mpath}.map"] = (mnode.path, "qcom,cpu-mem-opps")
    ctx.origins[f"{mpath}.ipm_ceil"] = (mnode.path, "qcom,ipm-ceil")
    ctx.origins[f"{mpath}.name"] = (mnode.path, "label")
    mon_cpus = ctx.phandles(mnode, "cpus")
    mask = cpus.ids_of(ctx, mnode, "cpus", mon_cpus)
    compute = "qcom,compute-mon" in mnode.props
    ipm = ctx.u32(mnode, "qcom,ipm-ceil", default=0 if compute else DEFAULT_IPM_CEIL)
    cpu_tables = {ctx.phandles(c, "operating-points-v2")[0] for c in mon_cpus
                  if "operating-points-v2" in c.props}
    pairs = ctx.phandles(mnode, "qcom,cpu-mem-opps")
    if len(pairs) % 2:
        raise ctx.err(mnode, "qcom,cpu-mem-opps", "expected <&cpu_opp &mem_opp> pairs, got "
                      f"{len(pairs)} phandles")
    rows = []
    for ri in range(0, len(pairs), 2):
        cpu_opp, mem_opp = pairs[ri], pairs[ri + 1]
        entry = f"entry {ri // 2}"
        if cpu_opp.parent not in cpu_tables:
            raise ctx.err(mnode, "qcom,cpu-mem-opps", f"{entry}: {cpu_opp.path} is not an OPP "
                          "of the operating-points-v2 table of this monitor's CPUs")
        hz = _opp_hz(ctx, cpu_opp)
        if hz is None:
            raise ctx.err(cpu_opp, "opp-hz", "CPU OPP needs opp-hz")
        if mem_opp not in values:
            raise ctx.err(mnode, "qcom,cpu-mem-opps", f"{entry}: {mem_opp.path} is not an OPP "
                          f"of the group's table {table.path}, so its frequency is outside "
                          "the group's ladder")
        mem = values[mem_opp]
        # cpu MHz rounds up so a CPU running exactly at that OPP falls in its row (the
        # map takes the first row with cpu MHz >= f, decisions.md §2); mem kHz -> MHz.
        rows.append((math.ceil(hz / 1_000_000), mem if gnode_is_level(values) else mem // 1000))
    mon: dict[str, Any] = {"cpus": mask, "compute": compute, "ipm_ceil": ipm, "map": rows}
    label = _strings(mnode, "label")
    if label:
        mon["name"] = label[0]
    for prop, fld in _MONITOR_KNOBS.items():
        ctx.origins[f"{mpath}.{fld}"] = (mnode.path, prop)
        if prop in mnode.props:
            mon[fld] = ctx.u32(mnode, prop)
    for prop, fld in _MONITOR_HZ_KNOBS.items():
        ctx.origins[f"{mpath}.{fld}"] = (mnode.path, prop)
        hz_val = ctx.number(mnode, prop)
        if hz_val is not None:
            mon[fld] = hz_val // 1_000_000
    return mon


def gnode_is_level(values: dict[dtlib.Node, int]) -> bool:
    """Whether a group's OPP values are levels (every OPP has opp-level)."""
    return all("opp-level" in o.props for o in values)


# ---- entry point -----------------------------------------------------------------------------

_PATH_RE = re.compile(r"^(groups\[\d+\](?:\.monitors\[\d+\])?)(?:\.(\w+))?")


def _where(ctx: _Ctx, loc: str) -> str | None:
    """The "node:property" a model field path (groups[0].monitors[1].map[3]) came from."""
    where = None
    m = _PATH_RE.match(loc)
    if m:
        base, fld = m.group(1), m.group(2)
        where = ctx.origins.get(f"{base}.{fld}") if fld else None
        where = where or ctx.origins.get(base)
    elif loc.split(".")[0].split("[")[0] in ctx.origins:
        where = ctx.origins[loc.split(".")[0].split("[")[0]]
    if where is None:
        return None
    node_path, prop = where
    return f"{node_path}:{prop}" if prop else node_path


def _translate(ctx: _Ctx, err: ConfigError) -> ConfigError:
    """A model ConfigError re-raised against the DT node and property it came from."""
    loc = err.location or ""
    msg = str(err)
    prefix = ":".join(p for p in (err.source, err.location) if p)
    if prefix and msg.startswith(prefix + ": "):
        msg = msg[len(prefix) + 2:]
    return ConfigError(f"{msg} (field {loc})", source=ctx.source, location=_where(ctx, loc))


def load_dts(path: Path | str, dialect: str | None = None,
             include_dirs: tuple[Path, ...] = ()) -> SocConfig:
    """Read a memlat configuration from a .dts file (either binding).

    `dialect` overrides the binding's default (rfc2024 for the RFC binding, v8 for
    qcom,scmi-memlat); the result is validated for that dialect.
    """
    path = Path(path)
    dt = parse_dts(path, include_dirs)
    ctx = _Ctx(str(path), dt)
    cpus = _cpus(ctx)
    memlat, new_binding = _find_memlat(ctx)
    data = _new(ctx, memlat, cpus) if new_binding else _rfc(ctx, memlat, cpus)
    data["soc"] = _identity(ctx)
    data["cpus"] = [{"id": i, "cluster": cpus.cluster[i], "max_mhz": cpus.max_mhz[i]}
                    for i in range(len(cpus.nodes))]
    if dialect is not None:
        data["dialect"] = dialect
    try:
        soc = parse_soc(data, source=str(path))
    except ConfigError as exc:
        raise _translate(ctx, exc) from None
    # warnings name the DT node and property too
    soc._warnings = [f"{_where(ctx, w.split(':', 1)[0]) or w.split(':', 1)[0]}:"
                     f"{w.split(':', 1)[1]}" for w in soc.warnings]
    return soc
