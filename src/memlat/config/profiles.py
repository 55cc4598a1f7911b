"""Built-in SoC profiles (YAML data files under memlat/profiles/) and user YAML files."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from memlat.config.model import SocConfig, parse_soc
from memlat.errors import ConfigError
from memlat.yamlfile import parse_yaml_text, read_text

PROFILE_SUFFIXES = (".yaml", ".yml")
DEFAULT_SOC = "x1e80100"  # the default profile of every command (decisions.md §5)


def _profile_dir() -> Any:
    return resources.files("memlat") / "profiles"


def list_profiles() -> list[str]:
    """Names of the built-in SoC profiles, sorted."""
    return sorted(p.name.rsplit(".", 1)[0] for p in _profile_dir().iterdir()
                  if p.name.endswith(PROFILE_SUFFIXES))


def parse_yaml(text: str, source: str) -> SocConfig:
    """Parse profile YAML text; errors name `source` and the line or field."""
    data = parse_yaml_text(text, source)
    if not isinstance(data, dict):
        raise ConfigError("a profile must be a YAML mapping", source=source)
    return parse_soc(data, source=source)


def load_profile_file(path: Path | str) -> SocConfig:
    """Load a SoC profile from a YAML file."""
    return parse_yaml(read_text(path, "profile"), str(path))


@lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    """alias or compatible -> profile name, for every built-in profile."""
    out: dict[str, str] = {}
    for name in list_profiles():
        soc = load_profile(name)
        for alias in (*soc.soc.aliases, *soc.soc.compatible):
            out.setdefault(alias.lower(), name)
    return out


def load_profile(name: str) -> SocConfig:
    """A built-in profile by name, alias (hamoa) or root compatible (qcom,x1e80100), or a
    YAML file path (anything ending in .yaml/.yml or naming an existing file)."""
    key = name.strip()
    if key.endswith(PROFILE_SUFFIXES) or "/" in key:
        return load_profile_file(key)
    for candidate in (key, key.lower()):
        res = _profile_dir() / f"{candidate}.yaml"
        if res.is_file():
            return parse_yaml(res.read_text(encoding="utf-8"), f"profiles/{candidate}.yaml")
    alias = _aliases().get(key.lower())
    if alias is not None:
        return load_profile(alias)
    raise ConfigError(f"unknown SoC {name!r}; built-in profiles: {', '.join(list_profiles())}",
                      location="soc")


def profile_for_compatible(compatibles: list[str]) -> str | None:
    """The built-in profile whose compatible or alias matches one of `compatibles`."""
    table = _aliases()
    for comp in compatibles:
        if comp.lower() in table:
            return table[comp.lower()]
    return None
