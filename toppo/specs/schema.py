"""JSON-schema checks whose errors read as one line each, ``key.path[0]: why``.

One function for every config this project validates against a schema: the workflow config
(``toppo.specs.grid.validate_config``, used by the Snakefile and ``python -m analysis status``) and
its ``report:`` section (``analysis.report_errors``, used by ``python -m analysis``). A
jsonschema error prints the failing schema and instance, dozens to hundreds of lines (a
misspelt top-level key dumps the whole schema); the user needs the key and the rule.

Also ``yaml_error_line``: a YAML syntax error as ``file:line:column: why``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import yaml


def key_path(parts: Iterable[str | int], root: str = "") -> str:
    """``budgets.MT10``, ``grid[0].seeds``; ``root`` first (e.g. ``report``)."""
    out = root
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}" if out else str(p)
    return out


def error_line(err: Any, root: str = "") -> str:
    """One jsonschema ``ValidationError`` as ``key path: why``. An unknown key is named with
    the keys its mapping allows. A value that fits none of several forms (oneOf, anyOf) gets
    the complaint of the form of its own type (``0 is less than the minimum of 1`` rather
    than ``0 is not of type 'array'``) and the schema's description of the key."""
    from jsonschema.exceptions import best_match

    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        where = key_path(err.absolute_path, root)
        allowed = set(err.schema.get("properties", {}))
        known = f" (known keys: {', '.join(sorted(allowed))})" if allowed else ""
        return "; ".join(f"{key_path([k], where)}: unknown key"
                         for k in err.instance if k not in allowed) + known
    message, described = err.message, None
    if err.validator in ("oneOf", "anyOf") and err.context:
        described = err.schema.get("description")
        own_type = [e for e in err.context if e.validator != "type"]
        if own_type:
            err = best_match(own_type)
            message = err.message
        else:
            message = f"{err.instance!r} is not of type " + " or ".join(
                repr(e.validator_value) for e in err.context)
    return (f"{key_path(err.absolute_path, root) or '(top level)'}: {message}"
            + (f" ({' '.join(described.split())})" if described else ""))


@cache
def _schema(path: Path) -> tuple[dict[str, Any], Any]:
    """The schema at ``path`` and a registry resolving its relative ``$ref`` files."""
    from referencing import Registry, Resource

    def retrieve(uri: str) -> Resource:
        from urllib.parse import urlparse
        from urllib.request import url2pathname

        return Resource.from_contents(yaml.safe_load(Path(url2pathname(urlparse(uri).path)).read_text()))

    schema = {**yaml.safe_load(path.read_text()), "$id": path.resolve().as_uri()}
    return schema, Registry(retrieve=retrieve).with_resource(schema["$id"], Resource.from_contents(schema))


def schema_errors(instance: Any, schema_path: str | Path, root: str = "") -> list[str]:
    """Every way ``instance`` breaks the schema at ``schema_path`` (YAML; relative ``$ref``
    files resolved against it), one ``key path: why`` line each, in key order."""
    from jsonschema import Draft202012Validator

    schema, registry = _schema(Path(schema_path).resolve())
    errors = Draft202012Validator(schema, registry=registry).iter_errors(instance)
    return [error_line(e, root) for e in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path])]


def yaml_error_line(path: str | Path, exc: yaml.YAMLError) -> str:
    """A YAML syntax error as ``path:line:column: what`` (line and column 1-based, of the
    place the parser gave up: ``problem_mark``, else ``context_mark``)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    what = ": ".join(filter(None, [getattr(exc, "context", None), getattr(exc, "problem", None)]))
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    return f"{where}: not valid YAML: {what or str(exc).splitlines()[0]}"
