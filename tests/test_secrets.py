"""Where the Hugging Face token comes from, and that it is masked in text we show."""

from __future__ import annotations

import pytest
from huggingface_hub import constants

from slm_bench.errors import BenchError
from slm_bench.stores import secrets

TOKEN = "hf_env_token_for_tests_000000000"


@pytest.fixture(autouse=True)
def no_ambient_token(tmp_path, monkeypatch):
    """No HF_TOKEN, no stored login, no .env: each test sets exactly what it needs."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "stored_token"))
    monkeypatch.setattr(secrets, "_known_secrets", set())
    monkeypatch.chdir(tmp_path)


def test_env_var_wins_over_env_file(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("HF_TOKEN=hf_from_file_000000000000\n")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert secrets.hf_token(required=True) == TOKEN


def test_env_file_forms(tmp_path):
    env = tmp_path / "custom.env"
    env.write_text(
        "# comment\nOTHER=1\nexport HF_TOKEN='hf_quoted_value_0000000000'  \nBROKEN LINE\n"
    )
    assert secrets.hf_token(required=True, env_file=env) == "hf_quoted_value_0000000000"
    env.write_text("HF_TOKEN=hf_plain_value_000000000 # trailing comment\n")
    assert secrets.hf_token(required=False, env_file=env) == "hf_plain_value_000000000"


def test_stored_login_is_the_last_resort(tmp_path):
    (tmp_path / "stored_token").write_text("hf_stored_login_00000000000\n")
    assert secrets.hf_token(required=True) == "hf_stored_login_00000000000"


def test_missing_token_is_an_error_only_when_required():
    assert secrets.hf_token(required=False) is None
    with pytest.raises(BenchError) as raised:
        secrets.hf_token(required=True)
    assert str(raised.value) == (
        "HF_TOKEN: no Hugging Face token found: set HF_TOKEN or put HF_TOKEN=... in .env"
    )


def test_redact_masks_known_and_token_shaped_values(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("HF_TOKEN=plainsecretvalue123\n")
    secrets.hf_token(required=True)  # a token read once is remembered
    text = "sent plainsecretvalue123 and hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789 to hf_data/"
    assert secrets.redact(text) == "sent *** and *** to hf_data/"
    monkeypatch.setenv("HF_TOKEN", "envsecret_abcdef")
    assert secrets.redact("x envsecret_abcdef y") == "x *** y"


def test_short_values_are_not_registered():
    secrets.register_secret("abc")
    assert secrets.redact("abc abcdef") == "abc abcdef"


def test_unreadable_env_file_is_a_clear_error(tmp_path):
    folder = tmp_path / "env_dir"
    folder.mkdir()
    with pytest.raises(BenchError, match="env_dir: cannot read env file"):
        secrets.hf_token(required=False, env_file=folder)
