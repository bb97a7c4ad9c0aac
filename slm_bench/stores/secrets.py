"""Secrets: where the Hugging Face token comes from, and masking it in any text we show.

The token is read from ``HF_TOKEN``, then from a ``.env`` file, then from the login that
``hf auth login`` stored. It is only ever handed to huggingface_hub; every message the project
builds from outside text (server replies, library errors) goes through :func:`redact` first.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from slm_bench.errors import BenchError

TOKEN_VAR = "HF_TOKEN"
HOW_TO_PROVIDE = f"set {TOKEN_VAR} or put {TOKEN_VAR}=... in .env"
MASK = "***"

# Hugging Face user tokens look like ``hf_`` + 30-40 letters/digits; masked even when unknown.
_HF_TOKEN_PATTERN = re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")
_known_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember ``value`` so :func:`redact` masks it wherever it appears."""
    if value and len(value) >= 8:  # a very short value would mask ordinary words
        _known_secrets.add(value)


def read_env_file(path: str | os.PathLike) -> dict[str, str]:
    """``KEY=VALUE`` lines of a dotenv file (``export``, quotes and ``#`` comments allowed)."""
    values: dict[str, str] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return values
    except OSError as error:
        raise BenchError(f"{path}: cannot read env file ({error.strerror})") from None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].strip()
        values[key.strip()] = value
    return values


def hf_token(required: bool, env_file: str | os.PathLike = ".env") -> str | None:
    """The Hugging Face token, or None when there is none and ``required`` is False.

    A missing token is an error only when the action needs one (an upload, a private repo).
    """
    token = os.environ.get(TOKEN_VAR) or read_env_file(env_file).get(TOKEN_VAR)
    if not token:
        token = _stored_login_token()
    if token:
        register_secret(token)
        return token
    if required:
        raise BenchError(f"{TOKEN_VAR}: no Hugging Face token found: {HOW_TO_PROVIDE}")
    return None


def _stored_login_token() -> str | None:
    """The token ``hf auth login`` saved under HF_HOME, if any."""
    from huggingface_hub import constants

    try:
        return Path(constants.HF_TOKEN_PATH).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def redact(text: str) -> str:
    """``text`` with every known token value (and anything shaped like an HF token) masked."""
    env_token = os.environ.get(TOKEN_VAR)
    for secret in sorted(
        _known_secrets | ({env_token} if env_token else set()), key=len, reverse=True
    ):
        if len(secret) >= 8:
            text = text.replace(secret, MASK)
    return _HF_TOKEN_PATTERN.sub(MASK, text)
