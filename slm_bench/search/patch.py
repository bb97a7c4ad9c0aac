"""Write searched values into a spec file, touching only the lines that must change.

The spec file is edited as text, not re-dumped, so ``${max_frame}``, anchors, comments and the
other specs in the file stay byte-identical. A search's patch writes only the chosen values the
spec does not already hold (``changed_values``): an override equal to what the spec resolves to
would change no run and only make the spec noisier. A value goes into the spec's *own* mapping:
when the key comes from a ``<<:`` merge of a shared anchor, a local key is added beside the merge
(YAML's rule: local keys win), so the other specs that share the anchor keep their values. The
result is checked by resolving the spec again: exactly the searched paths changed, to exactly the
values.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

import yaml

from slm_bench.atomic import write_text
from slm_bench.errors import BenchError
from slm_bench.formats.spec import CELL_CONTROLLED, cell_controlled, resolve_spec

_KEY_LINE = r"^(?P<indent>[ ]*)(?P<key>{key}):(?P<rest>[ \t].*|)$"


def yaml_scalar(value: object) -> str:
    """A YAML 1.1 scalar PyYAML reads back as the same value (``1e-05`` alone is a string)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BenchError(f"cannot write a non-finite value {value!r} into a spec")
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    text = str(value)
    if re.fullmatch(r"[A-Za-z_][\w.-]*", text) and yaml.safe_load(text) == text:
        return text  # a plain identifier such as Adam reads back as itself
    return json.dumps(text)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _block_end(lines: list[str], start: int, indent: int) -> int:
    """Index after the last line of the block opened at ``start`` (lines deeper than indent)."""
    end = start + 1
    last = start + 1
    while end < len(lines):
        if _content(lines[end]):
            if _indent(lines[end]) <= indent:
                break
            last = end + 1
        end += 1
    return last


def _set_yaml(
    lines: list[str], spec_name: str, path: str, value: object, raw: Mapping, where: str
) -> None:
    match = re.compile(_KEY_LINE.format(key=re.escape(spec_name)))
    starts = [
        i for i, line in enumerate(lines) if match.match(line.rstrip("\n")) and not _indent(line)
    ]
    if not starts:
        raise BenchError(f"{where}: spec {spec_name!r} not found as a top-level key")
    parent, parent_indent = starts[0], 0
    parts = path.split(".")
    for depth, key in enumerate(parts):
        end = _block_end(lines, parent, parent_indent)
        children = [i for i in range(parent + 1, end) if _content(lines[i])]
        child_indent = min((_indent(lines[i]) for i in children), default=parent_indent + 2)
        pattern = re.compile(_KEY_LINE.format(key=re.escape(key)))
        found = None
        for i in children:
            hit = pattern.match(lines[i].rstrip("\n"))
            if hit and _indent(lines[i]) == child_indent:
                found = (i, hit)
        last = depth == len(parts) - 1
        if found is None:
            merged = _lookup(raw, parts[: depth + 1])
            _insert(lines, end, child_indent, parts[depth:], value, merged)
            return
        i, hit = found
        rest = hit.group("rest").strip()
        comment = ""
        if " #" in rest:
            rest, comment = rest.split(" #", 1)
            rest, comment = rest.strip(), "  #" + comment
        if last:
            if rest in ("", "|", ">") or rest.startswith(("*", "&", "{", "[")):
                raise BenchError(
                    f"{where}: {path}: the spec holds a block, alias or flow value there;"
                    " write the value by hand"
                )
            newline = "\n" if lines[i].endswith("\n") else ""
            lines[i] = f"{' ' * child_indent}{key}: {yaml_scalar(value)}{comment}{newline}"
            return
        if rest and not rest.startswith("&"):
            raise BenchError(
                f"{where}: {path}: {key} is an alias or inline value in the spec;"
                " write the value by hand"
            )
        parent, parent_indent = i, child_indent


def _lookup(body: Mapping, keys: list[str], absent: object = None) -> object:
    """The value at ``keys`` in a parsed spec (merges applied), or ``absent``."""
    node: object = body
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return absent
        node = node[key]
    return node


def _block(mapping: Mapping, indent: int) -> list[str]:
    """A mapping as block YAML lines (sequences inline, strings double-quoted, as SLM-Lab's
    ``"${max_frame}"`` is, so text substitution still yields a bare number)."""
    lines = []
    for key, value in mapping.items():
        pad = " " * indent
        if isinstance(value, Mapping):
            lines.append(f"{pad}{key}:\n")
            lines.extend(_block(value, indent + 2))
        elif isinstance(value, list):
            lines.append(f"{pad}{key}: [{', '.join(_inline(v) for v in value)}]\n")
        else:
            lines.append(f"{pad}{key}: {_inline(value)}\n")
    return lines


def _inline(value: object) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_inline(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return yaml_scalar(value)


def _insert(
    lines: list[str], at: int, indent: int, keys: list[str], value: object, merged: object
) -> None:
    """Insert ``keys`` (the missing tail of the path) at line ``at``. When the first missing
    key holds a mapping merged in from an anchor (``merged``), it is written out whole with the
    new value, since a local key replaces a merged mapping instead of merging into it."""
    if isinstance(merged, Mapping) and len(keys) > 1:
        content = copy.deepcopy(dict(merged))
        node = content
        for key in keys[1:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
        new = _block({keys[0]: content}, indent)
    else:
        new = []
        for depth, key in enumerate(keys):
            pad = " " * (indent + 2 * depth)
            tail = f" {yaml_scalar(value)}" if depth == len(keys) - 1 else ""
            new.append(f"{pad}{key}:{tail}\n")
    if at > 0 and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    lines[at:at] = new


def _set_json(text: str, spec_name: str, values: Mapping[str, object], where: str) -> str:
    data = json.loads(text)
    if json.dumps(data, indent=2) + "\n" != text and json.dumps(data, indent=2) != text:
        raise BenchError(
            f"{where}: the JSON spec file is not in json.dumps(indent=2) form, so it cannot be"
            " edited without reformatting it; write the values by hand"
        )
    for path, value in values.items():
        node = data[spec_name]
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return json.dumps(data, indent=2) + ("\n" if text.endswith("\n") else "")


def _resolve_text(text: str, beside: Path, spec_name: str, sets: Mapping[str, str]) -> dict:
    """Resolve a spec from text, as if it were the file ``beside`` (same folder and suffix)."""
    fd, tmp = tempfile.mkstemp(prefix=".search-check-", suffix=beside.suffix, dir=beside.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return resolve_spec(tmp, spec_name, sets)
    finally:
        os.unlink(tmp)


def write_values(
    text: str,
    spec_path: Path,
    spec_file: str,
    spec_name: str,
    values: Mapping[str, object],
    sets: Mapping[str, str],
    before: dict | None = None,
) -> str:
    """The spec file's text with ``values`` (spec path -> value) written into ``spec_name``;
    ``before``: the spec ``text`` resolves to, when the caller has already resolved it."""
    where = f"{spec_file}: {spec_name}"
    for path in values:
        controlled = cell_controlled(path)
        if controlled:
            raise BenchError(
                f"{where}: {path}: {controlled} is set by {CELL_CONTROLLED[controlled]};"
                " a spec.patch never writes it"
            )
    if spec_file.endswith(".json"):
        new = _set_json(text, spec_name, values, where)
    else:
        lines = text.splitlines(keepends=True)
        for path, value in values.items():
            raw = yaml.safe_load("".join(lines)).get(spec_name) or {}
            _set_yaml(lines, spec_name, path, value, raw, where)
        new = "".join(lines)
    if before is None:
        before = _resolve_text(text, spec_path, spec_name, sets)
    after = _resolve_text(new, spec_path, spec_name, sets)
    expected = copy.deepcopy(before)
    for path, value in values.items():
        node = expected
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    if after != expected:
        raise BenchError(f"{where}: writing the searched values changed more than those keys")
    return new


_ABSENT = object()


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(held: object, chosen: object) -> bool:
    """Whether the spec already holds ``chosen``. Numbers compare by value: a spec's int 1 and a
    chosen 1.0 (what a float column of the trials' CSV reads back as) are the same number, and
    the spec keeps its int. A bool is not a number here (YAML ``true`` is not ``1``), nor is a
    string, and an absent key holds nothing."""
    if _number(held) and _number(chosen):
        return held == chosen
    if isinstance(held, Mapping) and isinstance(chosen, Mapping):
        return held.keys() == chosen.keys() and all(_same(held[k], chosen[k]) for k in held)
    if isinstance(held, list) and isinstance(chosen, list):
        return len(held) == len(chosen) and all(map(_same, held, chosen))
    return type(held) is type(chosen) and held == chosen


def changed_values(spec: Mapping, values: Mapping[str, object]) -> dict[str, object]:
    """The ``values`` (spec path -> value) that the resolved ``spec`` does not already hold."""
    return {
        path: value
        for path, value in values.items()
        if not _same(_lookup(spec, path.split("."), _ABSENT), value)
    }


def write_changed(
    text: str,
    spec_path: Path,
    spec_file: str,
    spec_name: str,
    values: Mapping[str, object],
    sets: Mapping[str, str],
) -> tuple[str, dict[str, object]]:
    """The spec file's text with only the ``values`` it does not already hold written in (the
    text itself when it holds them all), and those values."""
    before = _resolve_text(text, spec_path, spec_name, sets)
    changed = changed_values(before, values)
    if not changed:
        return text, changed
    return write_values(text, spec_path, spec_file, spec_name, changed, sets, before), changed


def unified_diff(old: str, new: str, spec_file: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"a/{spec_file}",
            tofile=f"b/{spec_file}",
        )
    )


def apply_values(
    spec_path: Path, spec_file: str, spec_name: str, values: Mapping, sets: Mapping, patch: str
) -> dict[str, object]:
    """Write the ``values`` the spec does not hold into the spec file if it is still the file
    the patch was made from; the values written (none for an empty patch: the file is untouched).
    """
    old = spec_path.read_text(encoding="utf-8")
    new, changed = write_changed(old, spec_path, spec_file, spec_name, values, sets)
    if unified_diff(old, new, spec_file) != patch:
        raise BenchError(
            f"{spec_file}: changed since the search wrote its spec.patch; rerun the search"
        )
    if changed:
        write_text(spec_path, new)
    return changed
