"""Shared YAML + pydantic loading for the simulator's data files.

Turns a YAML syntax error or a pydantic ValidationError into a ConfigError that names
the file and the field path (helper-rules rule 4).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from memlat.errors import ConfigError
from memlat.yamlfile import loc_to_path

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base of every data-file model: unknown keys are errors, models are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Sourced(Strict):
    """A model whose numbers carry citations.

    `source` maps a field name to its citation ("workloads.md §7 [S 16]") or to
    "assumption"; the key `default` covers every field not listed explicitly.
    """

    source: dict[str, str] = {}

    def missing_sources(self) -> list[str]:
        """Numeric fields that were set but have no citation (empty when fully cited)."""
        if "default" in self.source:
            return []
        skip = {"source", "name", "soc", "cpus", "use", "description", "roles", "cluster"}
        out = []
        for f in sorted(self.model_fields_set):
            value = getattr(self, f)
            nested = isinstance(value, BaseModel) or (
                isinstance(value, list) and value and isinstance(value[0], BaseModel))
            if f not in skip and not nested and f not in self.source:
                out.append(f)
        return out


def validate(model: type[M], data: Any, source: str, prefix: str = "") -> M:
    """Validate `data` as `model`; the first error becomes a ConfigError(source, field)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = loc_to_path(tuple(err["loc"]))
        if prefix:
            loc = f"{prefix}.{loc}" if loc else prefix
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{err['msg']}{more}", source=source, location=loc or None) from exc
