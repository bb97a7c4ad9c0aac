"""The dstack runner's options (schemas/dstack.schema.yaml) and the store it uploads to."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from slm_bench.validation import validate_against


def validate_options(options: dict) -> dict:
    """The options checked against schemas/dstack.schema.yaml, with its defaults filled in."""
    filled = copy.deepcopy(options)
    validate_against(filled, "dstack.schema.yaml", "config.yaml: dstack")
    return filled


@dataclass(frozen=True)
class StoreTarget:
    """Where the remote run uploads its folder (the pipeline's store settings)."""

    name: str
    dev_repo: str | None
    endpoint: str | None = None  # a Hub other than huggingface.co (HF_ENDPOINT remotely)
    env_file: str = ".env"  # where HF_TOKEN may be kept instead of the environment
