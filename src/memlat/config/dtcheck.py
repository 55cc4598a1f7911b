"""`memlat dt check`: validate a user's device tree (.dts or .dtb) against the shipped
qcom,scmi-memlat binding (bindings/qcom,scmi-memlat.yaml) with dtschema, then against
memlat's own rules by loading it (memlat.config.dt.load_dts).

The schema check runs on a .dtb, as the kernel's `make dtbs_check` does: a .dts is
preprocessed (memlat.config.dt.preprocess) and compiled with `dtc` (Debian package
device-tree-compiler); dtschema decodes the blob (property types from the schemas) and
every node whose compatible is "qcom,scmi-memlat" is validated. Each finding names the
node path and the property.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import dtschema

from memlat.config.dt import NEW_COMPATIBLE, is_dtb, load_dts, max_dt_bytes, preprocess
from memlat.config.model import SocConfig
from memlat.errors import ConfigError

BINDING = "qcom,scmi-memlat.yaml"


def binding_path() -> Path:
    """The shipped binding YAML (a real file inside the installed package)."""
    res = resources.files("memlat") / "bindings" / BINDING
    return Path(str(res))


@lru_cache(maxsize=1)
def _validator() -> Any:
    """dtschema's validator with the shipped binding (built once: it loads every core
    schema)."""
    return dtschema.DTValidator([str(binding_path())])


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: the node path, the property ("" for the node) and the message."""

    node: str
    prop: str
    message: str
    kind: str  # "schema" (dtschema) or "memlat" (memlat's own rules)

    def __str__(self) -> str:
        where = f"{self.node}:{self.prop}" if self.prop else self.node
        return f"{where}: {self.message} [{self.kind}]"


@dataclass(slots=True)
class CheckResult:
    """What `check` found: findings, the memlat nodes validated, and the configuration
    (None when memlat's own rules refused the tree)."""

    findings: list[Finding]
    memlat_nodes: list[str]
    soc: SocConfig | None

    @property
    def ok(self) -> bool:
        """No findings."""
        return not self.findings


def compile_dtb(path: Path, include_dirs: tuple[Path, ...] = ()) -> bytes:
    """The .dtb bytes of `path`: read as is when it is a .dtb, else preprocessed and
    compiled with dtc. Raises ConfigError when dtc is missing or refuses the source."""
    if is_dtb(path):
        size = path.stat().st_size
        if size > max_dt_bytes():
            raise ConfigError(f"the .dtb is {size} bytes, over the device-tree limit of "
                              f"{max_dt_bytes()} bytes (set MEMLAT_MAX_DT_BYTES to raise it)",
                              source=str(path))
        return path.read_bytes()
    dtc = shutil.which("dtc")
    if dtc is None:
        raise ConfigError("checking a .dts needs the device-tree compiler `dtc` (Debian "
                          "package device-tree-compiler); or pass a .dtb", source=str(path))
    text = preprocess(path, include_dirs)
    proc = subprocess.run([dtc, "-q", "-I", "dts", "-O", "dtb", "-o", "-", "-"],
                          input=text.encode("utf-8"), capture_output=True, check=False)
    if proc.returncode != 0:
        first = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ConfigError(f"dtc cannot compile it: {first[0] if first else 'failed'}",
                          source=str(path))
    return proc.stdout


def _schema_findings(validator: Any, node: dict[str, Any], path: str) -> list[Finding]:
    node["$nodename"] = [path.rsplit("/", 1)[-1] or "/"]
    out = []
    for err in validator.iter_errors(node, filter=BINDING.removesuffix(".yaml")):
        parts = [str(p) for p in err.absolute_path]
        # the error path runs through child nodes (dicts) down to a property
        sub, cur = [], node
        while parts and isinstance(cur, dict) and isinstance(cur.get(parts[0]), dict):
            cur = cur[parts[0]]
            sub.append(parts.pop(0))
        node_path = "/".join([path.rstrip("/"), *sub]) or "/"
        prop = parts[0] if parts else ""
        out.append(Finding(node_path, prop, err.message, "schema"))
    return out


def check(path: Path | str, include_dirs: tuple[Path, ...] = ()) -> CheckResult:
    """Validate the device tree at `path` against the binding and memlat's rules.

    Raises ConfigError only when the file cannot be read or compiled at all; everything
    else is a Finding.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError("no such device-tree file", source=str(path))
    data = compile_dtb(path, include_dirs)
    validator = _validator()
    # dtschema prints type-decoding problems itself and returns them without the node;
    # the schema check below reports the same properties with their node paths
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        trees = validator.decode_dtb(data, [])
    findings: list[Finding] = []
    memlat_nodes: list[str] = []
    todo: list[tuple[dict[str, Any], str]] = [(t, "/") for t in trees]
    while todo:  # iterative: depth is bounded by the FDT, not by Python's stack
        node, npath = todo.pop()
        if NEW_COMPATIBLE in node.get("compatible", []):
            memlat_nodes.append(npath)
            findings += _schema_findings(validator, node, npath)
        todo.extend((v, f"{npath.rstrip('/')}/{k}") for k, v in node.items()
                    if isinstance(v, dict) and not k.startswith("$"))
    soc = None
    try:
        soc = load_dts(path, include_dirs=include_dirs)
    except ConfigError as exc:
        where = exc.location or "/"
        node_path, _, prop = where.partition(":")
        message = str(exc)
        prefix = ":".join(p for p in (exc.source, exc.location) if p)
        if prefix and message.startswith(prefix + ": "):
            message = message[len(prefix) + 2:]
        findings.append(Finding(node_path, prop, message, "memlat"))
    return CheckResult(findings, sorted(memlat_nodes), soc)
