"""YAML data files with errors that name the file, the line, and the field path.

Shared by the SoC profiles (memlat.config) and the simulator's data files
(memlat.sim): a YAML syntax error names the line and column, a pydantic validation
error names the field as `groups[1].monitors[0].map[5].mem`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from memlat.errors import ConfigError


def loc_to_path(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as `a.b[2].c`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def parse_yaml_text(text: str, source: str) -> Any:
    """Parse YAML text; a syntax error becomes a ConfigError naming `source` and line."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"not valid YAML: {problem}", source=source, location=where) from None


def read_text(path: Path | str, what: str = "file") -> str:
    """A file's text; an unreadable file becomes a ConfigError naming it."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror}", source=str(p)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not a text {what}: byte {exc.object[exc.start]:#04x} at byte "
                          f"offset {exc.start} is not UTF-8", source=str(p)) from None


def read_yaml(path: Path | str) -> Any:
    """Read and parse a YAML file; errors name the file and the line."""
    return parse_yaml_text(read_text(path), str(path))
