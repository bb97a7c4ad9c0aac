"""SLM-Lab spec files, read exactly as SLM-Lab reads them, and checked against a Settings line.

A spec file maps spec name -> spec body. SLM-Lab substitutes ``-s KEY=VALUE`` pairs into the raw
text before parsing it as JSON or YAML; top-level keys starting with ``_`` hold YAML anchors and
are not runnable specs.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from slm_bench.errors import BenchError
from slm_bench.validation import validate_against

if TYPE_CHECKING:
    from slm_bench.formats.settings import Settings

SLM_LAB_SPEC_DIR = "slm_lab/spec"
AUDIT_POLICIES = ("error", "warn")

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
# Two distinct budgets that no spec hard-codes, used to see whether env.max_frame follows -s.
_PROBE_FRAMES = (1_000_003, 2_000_003)


def _number_text(value: str) -> str | None:
    """The text SLM-Lab inserts for a numeric ``-s`` value (whole numbers in full), else None."""
    try:
        number = float(value)
    except ValueError:
        return None
    if not (math.isfinite(number) and number.is_integer()):
        return value
    try:
        return str(int(value))  # exact for long integer literals
    except ValueError:
        return str(int(number))


def substitute(text: str, sets: Mapping[str, object]) -> str:
    """Apply SLM-Lab's ``-s KEY=VALUE`` substitution to a raw spec file's text.

    A value that parses as a number replaces both ``"${KEY}"`` (losing its quotes, so it becomes
    a bare number) and ``${KEY}``, written in whole-number form when whole (``3e6`` -> ``3000000``).
    Any other value replaces ``${KEY}`` only, so ``"${env}"`` stays a quoted string:
    ``name: "${env}"`` with ``env=ALE/Pong-v5`` reads as ``"ALE/Pong-v5"`` in JSON and YAML.
    """
    for key, raw in sets.items():
        value = str(raw)
        number = _number_text(value)
        if number is not None:
            text = text.replace(f'"${{{key}}}"', number)
            value = number
        text = text.replace(f"${{{key}}}", value)
    return text


# libyaml's safe loader when PyYAML has it: planning a 300-row benchmark parses many specs.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse(text: str, source: str) -> object:
    if source.endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise BenchError(
                f"{source}: not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}"
            ) from None
    if source.endswith((".yaml", ".yml")):
        try:
            return yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            reason = error.problem or error.context or "unreadable"
            raise BenchError(f"{source}: not valid YAML{where}: {reason}") from None
        except yaml.YAMLError as error:
            raise BenchError(f"{source}: not valid YAML: {error}") from None
    raise BenchError(f"{source}: a spec file must end in .json, .yaml or .yml")


def load_spec_file(path: str | Path, sets: Mapping[str, object] | None = None) -> dict[str, dict]:
    """All runnable specs in a file (``_``-prefixed keys skipped), after ``-s`` substitution."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BenchError(f"{source}: spec file not found") from None
    except OSError as error:
        raise BenchError(f"{source}: cannot read spec file: {error.strerror}") from None
    data = _parse(substitute(text, sets or {}), source)
    if not isinstance(data, dict):
        raise BenchError(f"{source}: expected a mapping of spec name -> spec body")
    specs = {}
    for name, body in data.items():
        if not isinstance(name, str):
            raise BenchError(f"{source}: spec name {name!r} is not a string")
        if name.startswith("_"):
            continue
        if not isinstance(body, dict):
            raise BenchError(f"{source}: {name}: expected a spec body (a mapping)")
        specs[name] = body
    return specs


def spec_names(path: str | Path) -> list[str]:
    """Runnable spec names in a file, in file order."""
    return list(load_spec_file(path))


def _find_placeholder(value: object, path: str = "") -> tuple[str, str] | None:
    """(dotted path, variable) of the first ``${...}`` left in ``value``, in document order."""
    if isinstance(value, str):
        match = _PLACEHOLDER.search(value)
        return (path, match.group(1)) if match else None
    if isinstance(value, dict):
        items = ((f"{path}.{key}" if path else str(key), item) for key, item in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    else:
        return None
    for item_path, item in items:
        found = _find_placeholder(item, item_path)
        if found:
            return found
    return None


_Version = tuple[int, int] | None  # a file's (mtime_ns, size); None when it cannot be read


def _version(path: str | Path) -> _Version:
    try:
        stat = Path(path).stat()
        return (stat.st_mtime_ns, stat.st_size)
    except OSError:
        return None  # load_spec_file reports it


@lru_cache(maxsize=256)
def _raw_specs(source: str, version: _Version) -> dict[str, dict]:
    return load_spec_file(source)


def raw_spec(path: str | Path, name: str) -> dict:
    """Spec ``name`` as written, before ``-s`` substitution (placeholders left as text).

    The file is parsed once per version, however many cells use it: planning a 300-row
    benchmark needs a cheap view of each row's spec. The resolved spec is a function of this
    body and the sets (for a file that parses before substitution), so it identifies a cell's
    work. Raises BenchError for a malformed file or an unknown name.
    """
    specs = _raw_specs(str(path), _version(path))
    if name not in specs:
        raise BenchError(
            f"{path}: no spec named {name!r} (specs in this file: {', '.join(specs) or 'none'})"
        )
    return specs[name]


def placeholders(body: object) -> set[str]:
    """The ``${key}`` names used anywhere in a (raw) spec body."""
    if isinstance(body, str):
        return set(_PLACEHOLDER.findall(body))
    values = body.values() if isinstance(body, dict) else body if isinstance(body, list) else ()
    return set().union(*(placeholders(value) for value in values))


def resolve_spec(path: str | Path, name: str, sets: Mapping[str, object] | None = None) -> dict:
    """The body of spec ``name`` as SLM-Lab would run it: substituted, cast and validated."""
    version = _version(path)
    frozen_sets = tuple(sorted((str(k), str(v)) for k, v in (sets or {}).items()))
    return copy.deepcopy(_resolve_cached(str(path), version, name, frozen_sets))


@lru_cache(maxsize=1024)
def _resolve_cached(source: str, version: _Version, name: str, sets: tuple) -> dict:
    """resolve_spec's work, remembered per file version: a plan resolves each cell's spec twice."""
    path = source
    specs = load_spec_file(path, dict(sets))
    if name not in specs:
        raise BenchError(
            f"{source}: no spec named {name!r} (specs in this file: {', '.join(specs) or 'none'})"
        )
    body = copy.deepcopy(specs[name])  # YAML anchors share objects between specs
    found = _find_placeholder(body)
    if found:
        where, var = found
        raise BenchError(f"{source}: {name}: {where} still holds ${{{var}}}; pass -s {var}=...")
    env = body.get("env")
    if isinstance(env, dict):
        frames = env.get("max_frame")
        if isinstance(frames, float) and frames.is_integer():
            env["max_frame"] = int(frames)
    check_spec_schema(body, f"{source}: {name}")
    return body


def check_spec_schema(body: object, source: str) -> None:
    """Check a spec body against schemas/spec.schema.yaml; BenchError names the failing field."""
    validate_against(body, "spec.schema.yaml", source, fill_defaults=False)


def _whole(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


# What SLM-Lab runs with when a spec leaves a value out: make_env's ``num_envs`` (1) and the
# env's ``log_frequency`` / ``eval_frequency`` (10000); extend_meta_spec's ``rigorous_eval`` (0).
SLM_LAB_DEFAULTS = {
    "env.num_envs": 1,
    "meta.log_frequency": 10000,
    "meta.eval_frequency": 10000,
    "meta.rigorous_eval": 0,
}


# The spec keys the cell itself sets (its env id and its Settings line): a search never varies
# them and a spec.patch never writes them, or a trial would run outside the cell.
CELL_CONTROLLED = {
    "env.name": "the cell's env id",
    "env.max_frame": "the Settings line's max_frame",
    "env.num_envs": "the Settings line's num_envs",
    "meta.max_session": "the Settings line's max_session",
    "meta.log_frequency": "the Settings line's log_frequency",
}


def cell_controlled(path: str) -> str | None:
    """The cell-controlled key that ``path`` is, lies in, or holds (``env`` holds ``env.name``)."""
    for key in CELL_CONTROLLED:
        if path == key or key.startswith(f"{path}.") or path.startswith(f"{key}."):
            return key
    return None


def has_path(body: Mapping, path: str) -> bool:
    """Whether the dotted ``path`` is a key of ``body`` (its value may be null)."""
    node: object = body
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def spec_default(body: Mapping, dotted: str) -> object:
    """A spec value as SLM-Lab runs it: the spec's own, else SLM-Lab's default (else None)."""
    section, key = dotted.split(".", 1)
    value = (body.get(section) or {}).get(key)
    return SLM_LAB_DEFAULTS.get(dotted) if value is None else value


def spec_settings(body: Mapping) -> dict[str, int | None]:
    """The four Settings values a spec body runs with, keyed by Settings field name (SLM-Lab's
    defaults where it leaves one out; None for max_frame or max_session, which SLM-Lab has no
    default for). A run folder's older spec holds a list of envs: the first one counts."""
    env = body.get("env")
    env = env[0] if isinstance(env, list) and env else env
    meta = body.get("meta")
    body = {
        "env": env if isinstance(env, Mapping) else {},
        "meta": meta if isinstance(meta, Mapping) else {},
    }
    return {
        "max_frame": _whole(spec_default(body, "env.max_frame")),
        "num_envs": _whole(spec_default(body, "env.num_envs")),
        "max_session": _whole(spec_default(body, "meta.max_session")),
        "log_frequency": _whole(spec_default(body, "meta.log_frequency")),
    }


# env keys SLM-Lab keeps for itself (slm_lab/env RESERVED_KEYS); every other key goes to gym.make.
_RESERVED_ENV_KEYS = frozenset(
    {"name", "num_envs", "max_t", "max_frame", "normalize_obs", "normalize_reward"}
    | {"clip_obs", "clip_reward", "device", "reward_scale"}
)


def _registered_as(env: Mapping, env_id: str) -> bool:
    """Whether ``env`` (a spec's env section) makes the env Gymnasium registers as ``env_id``:
    ``LunarLander-v3`` with ``continuous: true`` is ``LunarLanderContinuous-v3``."""
    try:
        from gymnasium.envs.registration import registry
    except ImportError:  # pragma: no cover - gymnasium is a dependency
        return False
    made, row = registry.get(str(env.get("name"))), registry.get(env_id)
    if made is None or row is None or made.entry_point != row.entry_point:
        return False
    kwargs = {**made.kwargs, **{k: v for k, v in env.items() if k not in _RESERVED_ENV_KEYS}}
    return kwargs == row.kwargs and made.max_episode_steps == row.max_episode_steps


def check_env_name(body: Mapping, env_id: str, source: str = "") -> None:
    """The row's env id must be the env the spec trains on (``env.name`` after ``-s``, or the
    same Gymnasium registration with the spec's ``gym.make`` keys)."""
    env = body.get("env") or {}
    name = env.get("name")
    if name != env_id and not _registered_as(env, env_id):
        prefix = f"{source}: " if source else ""
        raise BenchError(
            f"{prefix}env.name is {name!r} but the row is for {env_id!r} (expected the row's env; "
            "a spec for another env would publish its score under this one)"
        )


def max_frame_is_hardcoded(
    path: str | Path, name: str, sets: Mapping[str, object] | None = None
) -> bool:
    """True when spec ``name``'s env.max_frame does not come from ``${max_frame}``.

    Resolves the spec with two different ``max_frame`` values and checks that env.max_frame
    follows, which also covers placeholders reached through YAML anchors.
    """
    seen = []
    for frames in _PROBE_FRAMES:
        body = resolve_spec(path, name, {**(sets or {}), "max_frame": frames})
        seen.append(body["env"]["max_frame"])
    return seen != list(_PROBE_FRAMES)


def audit_spec(
    body: Mapping,
    settings: Settings,
    hardcoded: bool,
    policy: str = "error",
    source: str = "",
    env_id: str | None = None,
) -> list[str]:
    """Check a resolved spec against its Settings line; return warnings, raise on a problem.

    With ``env_id`` (the row's env), the spec must train on that env (``check_env_name``).
    ``settings`` are the row's: its table's Settings line, or that line with the row's documented
    frame budget as max_frame. Any Settings mismatch is an error (SLM-Lab's defaults count for
    values the spec leaves out). A hard-coded env.max_frame is an error under policy
    ``error``; under ``warn`` it is returned as a warning when it equals the Settings value (one
    that differs is already a mismatch).
    """
    if policy not in AUDIT_POLICIES:
        raise BenchError(f"audit policy {policy!r}: expected one of {', '.join(AUDIT_POLICIES)}")
    prefix = f"{source}: " if source else ""
    if env_id is not None:
        check_env_name(body, env_id, source)
    values = spec_settings(body)
    problems = settings.mismatches(values)
    if problems:
        raise BenchError(f"{prefix}spec does not match the Settings line: {'; '.join(problems)}")
    if not hardcoded:
        return []
    message = (
        f"{prefix}env.max_frame is hard-coded ({values['max_frame']}); "
        "use ${max_frame} so the Settings line owns it"
    )
    if policy == "error":
        raise BenchError(message)
    return [message]


def locate_spec_file(spec_file: str, root: Path) -> Path:
    """Where SLM-Lab reads SPEC_FILE from, given the SLM-Lab repo ``root``.

    In an SLM-Lab checkout (``root/slm_lab/spec`` exists) the file lives under ``slm_lab/spec/``,
    whether or not SPEC_FILE starts with it; elsewhere (the project's own specs) it is
    ``root / spec_file``.
    """
    root = Path(root)
    spec_dir = root / SLM_LAB_SPEC_DIR
    if not spec_dir.is_dir():
        return root / spec_file
    relative = spec_file.lstrip("/")
    if relative.startswith(SLM_LAB_SPEC_DIR + "/"):
        relative = relative[len(SLM_LAB_SPEC_DIR) + 1 :]
    return spec_dir / relative
