"""The one JSON-Schema validator: the project's schemas, defaults filled in, one-line errors.

Snakemake's own ``validate`` prints a multi-line report; a newcomer with a typo deserves one line
naming the file, the key and what was expected. Schemas live in the repository's ``schemas/``
folder, which an installed package carries as ``slm_bench/schemas/``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from slm_bench.errors import BenchError

_NUMBER_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def schema_dir() -> Path:
    """``slm_bench/schemas`` in an installed package, else the checkout's top-level ``schemas/``."""
    packaged = Path(str(resources.files("slm_bench"))) / "schemas"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "schemas"


def schema_path(name: str) -> Path:
    """Path of ``schemas/<name>`` (e.g. ``config.schema.yaml``)."""
    return schema_dir() / name


# libyaml's safe loader when PyYAML has it: every plan reads the config schemas.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def load_schema(name: str) -> dict:
    text = schema_path(name).read_text(encoding="utf-8")
    return yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader


def _with_defaults(validator_class: type[jsonschema.Validator]) -> type[jsonschema.Validator]:
    """Extend a jsonschema validator to fill in ``default`` values (as snakemake.utils.validate)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(
        validator: jsonschema.Validator, properties: dict, instance: object, schema: dict
    ) -> Iterator[jsonschema.ValidationError]:
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_FILLING = _with_defaults(jsonschema.Draft202012Validator)
_CHECKING = jsonschema.Draft202012Validator


def describe(error: jsonschema.ValidationError) -> str:
    """``where: what was expected`` for one schema error."""
    # iter_errors sets every field (jsonschema's Unset is for errors made by hand)
    instance: Any = error.instance
    value: Any = error.validator_value
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    # a key shown as typed, unless it would break the one line (newlines, control characters)
    where = ".".join(
        str(part) if str(part).isprintable() else repr(part) for part in error.absolute_path
    )
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        unknown = sorted(set(instance) - set(allowed))
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"unknown key {', '.join(map(repr, unknown))} at {where or 'top level'}{hint}"
    if error.validator == "required":
        missing = re.match(r"'([^']*)'", error.message)
        name = missing.group(1) if missing else "?"
        return f"{where + '.' if where else ''}{name} is missing"
    if error.validator == "type":
        expected = " or ".join(value) if isinstance(value, list) else value
        hint = ""
        if isinstance(instance, str) and _NUMBER_TEXT.match(instance.strip()):
            number = float(instance)
            written = int(number) if number.is_integer() else repr(number)
            hint = f" (YAML reads a bare {instance} as text; write {written})"
        return f"{where or 'top level'}: expected {expected}, got {instance!r}{hint}"
    if error.validator == "pattern":
        # a pattern's schema says in its title what it stands for
        expected = schema.get("title") or f"text matching {value}"
        return f"{where or 'top level'}: got {instance!r} (expected {expected})"
    if error.validator == "enum":
        choices = ", ".join(map(repr, value))
        return f"{where or 'top level'}: got {instance!r} (expected one of {choices})"
    if error.validator in ("minimum", "minLength", "exclusiveMinimum"):
        return f"{where}: expected at least {value}, got {instance!r}"
    return f"{where or 'top level'}: {error.message}"


def first_error(
    data: Any, schema_name: str, fill_defaults: bool = True
) -> jsonschema.ValidationError | None:
    """The most specific error (the deepest; a typo inside an entry, not its parent), or None.
    ``data`` is a loaded YAML or JSON document, of any shape."""
    cls = _FILLING if fill_defaults else _CHECKING
    errors = list(cls(load_schema(schema_name)).iter_errors(data))
    if not errors:
        return None
    deepest = max(len(e.absolute_path) for e in errors)
    return jsonschema.exceptions.best_match(e for e in errors if len(e.absolute_path) == deepest)


def key_path(error: jsonschema.ValidationError) -> list:
    """The keys of the value an error is about (an unknown key's own, not its parent's)."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = error.schema.get("properties", {}) if isinstance(error.schema, Mapping) else {}
        path += sorted(key for key in error.instance if key not in allowed)[:1]
    return path


def validate_against(
    data: object,
    schema_name: str,
    source: str,
    source_of: Callable[[list], str] | None = None,
    fill_defaults: bool = True,
) -> object:
    """Validate ``data`` in place (defaults filled in); BenchError ``source: where: what``.

    ``source_of`` names the source of one key path (a config merged from several files and the
    command line names the one that set the bad value)."""
    error = first_error(data, schema_name, fill_defaults)
    if error is not None:
        where = source_of(key_path(error)) if source_of else source
        raise BenchError(f"{where}: {describe(error)}")
    return data
