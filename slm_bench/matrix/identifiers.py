"""What an env id, algorithm key, label, spec name and ``-s`` value may be.

Each one ends up in a path under ``results/``, in a cell of BENCHMARKS.md or on SLM-Lab's command
line, so each is checked when the plan is made: a value that could leave ``results/``, break a
markdown table or be read as a command-line option is refused with one line (file, field, what
was expected) before any job runs.
"""

from __future__ import annotations

import math
import re

from slm_bench.errors import BenchError

# A Gymnasium-style id (CartPole-v1, HalfCheetah-v5); SLM-Lab adds the ALE/ and playground/
# namespaces. No dots: the id names a folder beside files such as results/audit.md.
ENV_ID = re.compile(r"(?:ALE/|playground/)?[A-Za-z][A-Za-z0-9_+-]{0,99}")
ENV_ID_EXPECTED = (
    "a Gymnasium env id such as CartPole-v1, ALE/Pong-v5 or playground/CartpoleBalance "
    "(letters, digits, _ + -; only the ALE/ or playground/ prefix)"
)
# Folders the workflow itself writes under results/: an env may not take their names.
RESERVED_ENV_NAMES = frozenset(
    {"benchmarks", "checkout", "hf_data", "logs", "phases", "plots", "publish", "report"}
    | {"search", "stats", "store", "work"}
)
# The {algo} wildcard: a folder name under results/{env}/.
ALGO_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+-]{0,99}")
ALGO_KEY_EXPECTED = "a name of letters, digits, _ + - (starting with a letter or digit)"
# SLM-Lab's spec names are identifiers; its data folder is named {spec_name}_{timestamp}.
SPEC_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,199}")
SPEC_NAME_EXPECTED = "a spec name of letters, digits, _ . + - (not starting with - or .)"
SET_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
# Snakemake refuses a wildcard value that ends in one piece repeated 20 or more times (its
# PeriodicityDetector, min_repeat=20, guards against a rule feeding itself): the job is dropped
# from the plan with a printed PeriodicWildcardError, and the run exits 0 having built nothing.
SNAKEMAKE_MIN_REPEAT = 20


def _refuse(where: str, value: object, expected: str) -> BenchError:
    # repr keeps the line one line whatever the value holds (newlines, control characters).
    return BenchError(f"{where}: got {value!r} (expected {expected})")


def repeated_suffix(value: str) -> str | None:
    """The piece ``value`` ends with 20 or more times in a row (Snakemake's periodic wildcard
    rule), else None."""
    for size in range(1, len(value) // SNAKEMAKE_MIN_REPEAT + 1):
        piece = value[-size:]
        if value.endswith(piece * SNAKEMAKE_MIN_REPEAT):
            return piece
    return None


def check_wildcard(value: str, where: str, shown: object | None = None) -> str:
    """``value`` when Snakemake can use it as a wildcard value (``shown``: what the user wrote)."""
    piece = repeated_suffix(value)
    if piece is not None:
        raise _refuse(
            where,
            value if shown is None else shown,
            f"a value that does not end in {piece!r} repeated {SNAKEMAKE_MIN_REPEAT} or more"
            " times: Snakemake takes such a wildcard for a rule feeding itself and builds nothing",
        )
    return value


def check_env_id(env_id: object, where: str) -> str:
    """``env_id`` when it is a Gymnasium-style id that stays a folder inside results/."""
    if not isinstance(env_id, str) or not ENV_ID.fullmatch(env_id):
        raise _refuse(where, env_id, ENV_ID_EXPECTED)
    base = env_id.split("/", 1)[-1]  # the {env} wildcard (naming.env_base)
    if base.lower() in RESERVED_ENV_NAMES:
        names = ", ".join(sorted(RESERVED_ENV_NAMES))
        raise _refuse(where, env_id, f"an env id that is not a results/ folder name: {names}")
    check_wildcard(base, where, env_id)
    return env_id


def check_algo_key(key: object, where: str) -> str:
    if not isinstance(key, str) or not ALGO_KEY.fullmatch(key):
        raise _refuse(where, key, ALGO_KEY_EXPECTED)
    return check_wildcard(key, where)


def check_table_text(value: object, where: str, what: str) -> str:
    """Text for one cell of a markdown table: one printable line, no ``|``, no outer spaces."""
    if (
        not isinstance(value, str)
        or not value
        or not value.isprintable()  # also refuses line and paragraph separators
        or "|" in value
        or value != value.strip()
    ):
        raise _refuse(where, value, f"{what}: one line, no '|', no leading or trailing spaces")
    return value


def check_label(label: object, where: str) -> str:
    return check_table_text(label, where, "an Algorithm column text such as PPO or DDQN+PER")


def check_spec_file(spec_file: object, where: str) -> str:
    return check_table_text(spec_file, where, "a spec file path")


def check_spec_name(spec_name: object, where: str) -> str:
    if not isinstance(spec_name, str) or not SPEC_NAME.fullmatch(spec_name):
        raise _refuse(where, spec_name, SPEC_NAME_EXPECTED)
    return spec_name


def check_set(key: object, value: object, where: str) -> str:
    """One ``-s KEY=VALUE`` pair; the value as it goes on SLM-Lab's command line."""
    if not isinstance(key, str) or not SET_KEY.fullmatch(key):
        raise _refuse(f"{where} key", key, "a name of letters, digits and _")
    if key == "max_frame":
        raise _refuse(f"{where}.{key}", value, "no max_frame here: it comes from the Settings line")
    text = value
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        text = number_text(value)
    if (
        not isinstance(text, str)
        or not text
        or not text.isprintable()
        or any(char.isspace() for char in text)
        or text.startswith("-")
        or "|" in text
    ):
        raise _refuse(
            f"{where}.{key}", value, "a number, or text without spaces that does not start with -"
        )
    return text


def number_text(value: int | float) -> str:
    """A number as ``-s`` text; whole floats as integers (SLM-Lab substitutes ``2e5`` as 200000)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
