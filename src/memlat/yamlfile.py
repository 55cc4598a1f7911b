"""YAML data files with errors that name the file, the line, and the field path.

Shared by the SoC profiles (memlat.config) and the simulator's data files
(memlat.sim): a YAML syntax error names the line and column, a pydantic validation
error names the field as `groups[1].monitors[0].map[5].mem`.

Bounds (issue 17): a file larger than MEMLAT_MAX_YAML_BYTES (default 8 MiB) and
collections nested deeper than MAX_YAML_DEPTH (64) are refused with an error naming the
limit, instead of a long parse or a RecursionError.

Decision: the parser is PyYAML's pure-Python SafeLoader with a depth-counting composer,
not libyaml's CSafeLoader, whose composer runs in C and cannot be bounded; parsed files
are cached by (path, size, mtime), so a profile read again and again is parsed once.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from memlat.errors import ConfigError

# parsed files by (path, size, mtime_ns): profiles are read again and again (every run,
# every sweep point); a changed file is parsed again
_CACHE: dict[tuple[str, int, int], Any] = {}
_CACHE_MAX = 128

MAX_YAML_DEPTH = 64
YAML_BYTES_ENV = "MEMLAT_MAX_YAML_BYTES"
DEFAULT_MAX_YAML_BYTES = 8 << 20


def input_limit(env: str, default: int) -> int:
    """A size limit in bytes: the environment variable `env` when set, else `default`.

    A value that is not a positive integer raises ConfigError naming the variable.
    """
    raw = os.environ.get(env)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip(), 0)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"must be a positive number of bytes, got {raw!r}", source=env)
    return value


class _DepthError(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses nesting deeper than MAX_YAML_DEPTH (the
    composer recurses once per level, so depth ~1000 would end in RecursionError)."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise _DepthError(event.start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


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
    """Parse YAML text; a syntax error becomes a ConfigError naming `source` and line.

    Text over MEMLAT_MAX_YAML_BYTES or nesting deeper than MAX_YAML_DEPTH is refused."""
    limit = input_limit(YAML_BYTES_ENV, DEFAULT_MAX_YAML_BYTES)
    size = len(text.encode("utf-8"))
    if size > limit:
        raise ConfigError(f"{size} bytes, over the YAML limit of {limit} bytes (set "
                          f"{YAML_BYTES_ENV} to raise it)", source=source)
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except _DepthError as exc:
        raise ConfigError(f"nested deeper than {MAX_YAML_DEPTH} levels (the YAML nesting "
                          "limit)", source=source, location=f"line {exc.line}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"not valid YAML: {problem}", source=source, location=where) from None
    finally:
        loader.dispose()


def read_text(path: Path | str, what: str = "file") -> str:
    """A file's text; an unreadable file becomes a ConfigError naming it."""
    p = Path(path)
    limit = input_limit(YAML_BYTES_ENV, DEFAULT_MAX_YAML_BYTES)
    try:
        size = p.stat().st_size
        if size > limit:
            raise ConfigError(f"{size} bytes, over the YAML limit of {limit} bytes (set "
                              f"{YAML_BYTES_ENV} to raise it)", source=str(p))
        return p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror}", source=str(p)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not a text {what}: byte {exc.object[exc.start]:#04x} at byte "
                          f"offset {exc.start} is not UTF-8", source=str(p)) from None


def read_yaml(path: Path | str) -> Any:
    """Read and parse a YAML file; errors name the file and the line.

    Parsed data is cached per (path, size, mtime); callers get their own deep copy.
    """
    p = Path(path)
    try:
        st = p.stat()
        key: tuple[str, int, int] | None = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    except OSError:
        key = None  # read_text below reports the error
    if key is not None and key in _CACHE:
        return copy.deepcopy(_CACHE[key])
    data = parse_yaml_text(read_text(p), str(p))
    if key is not None:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = copy.deepcopy(data)
    return data
