"""SoC configuration for the memlat agent: built-in profiles, YAML files, device trees.

`load_config` is the single entry point the probe and the CLI call.
"""

from __future__ import annotations

from pathlib import Path

from memlat.config.dt import load_dts
from memlat.config.model import (
    CommonEventMap,
    Cpu,
    Group,
    GroupEventMap,
    Identity,
    Monitor,
    SocConfig,
    parse_soc,
)
from memlat.config.profiles import DEFAULT_SOC, list_profiles, load_profile, load_profile_file
from memlat.errors import ConfigError
from memlat.qcom.dialect import DIALECTS

__all__ = [
    "DEFAULT_SOC",
    "DIALECTS",
    "CommonEventMap",
    "Cpu",
    "Group",
    "GroupEventMap",
    "Identity",
    "Monitor",
    "SocConfig",
    "list_profiles",
    "load_config",
    "load_dts",
    "load_profile",
    "load_profile_file",
    "parse_soc",
]


def load_config(soc: str | None = None, dts: Path | str | None = None,
                dialect: str | None = None) -> SocConfig:
    """The SoC configuration from a profile name / YAML path (`soc`) or a device tree (`dts`).

    With neither, the default profile x1e80100 (decisions.md §5). `dialect` (v8 or
    rfc2024) overrides the source's own default and the result is validated for it.
    """
    if dialect is not None and dialect not in DIALECTS:
        raise ConfigError(f"unknown dialect {dialect!r}; expected one of {', '.join(DIALECTS)}",
                          location="dialect")
    if soc is not None and dts is not None:
        raise ConfigError("give a SoC profile or a device tree, not both", location="soc")
    if dts is not None:
        return load_dts(Path(dts), dialect=dialect)
    config = load_profile(soc or DEFAULT_SOC)
    return config if dialect is None else config.with_dialect(dialect)
