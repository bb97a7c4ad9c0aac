"""The dstack runner's options (schemas/dstack.schema.yaml) and what the pipeline tells it: the
store its runs upload to, and the SLM-Lab checkout and spec root its cells come from."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from slm_bench.config_source import DEFAULT_SOURCE, ConfigSource
from slm_bench.errors import BenchError
from slm_bench.validation import validate_against

# Keys the pipeline adds to the options (runners.runner_options); not user options. ``source``
# names the config in error lines (slm_bench/config_source.py).
PIPELINE_KEYS = ("store", "checkout", "spec_root", "source")


def validate_options(options: dict, source: ConfigSource = DEFAULT_SOURCE) -> dict:
    """The options checked against schemas/dstack.schema.yaml, with its defaults filled in."""
    filled = copy.deepcopy(options)
    validate_against(
        filled,
        "dstack.schema.yaml",
        f"{source}: dstack",
        lambda path: f"{source.of(['dstack', *path])}: dstack",
    )
    return filled


@dataclass(frozen=True)
class StoreTarget:
    """Where the remote run uploads its folder (the pipeline's store settings)."""

    name: str
    dev_repo: str | None
    endpoint: str | None = None  # a Hub other than huggingface.co (HF_ENDPOINT remotely)
    env_file: str = ".env"  # where HF_TOKEN may be kept instead of the environment


def store_target(store: dict | None, source: ConfigSource = DEFAULT_SOURCE) -> StoreTarget | None:
    """The pipeline's store settings; remote runs can only upload to a Hugging Face repo."""
    if store is None:
        return None
    name = store.get("name")
    if name != "hf":
        raise BenchError(
            f"{source.where('store')}: the dstack runner needs store: hf (a remote run uploads"
            f" its folder to the dev dataset repo), got {name!r}"
        )
    return StoreTarget(
        name=name,
        dev_repo=store.get("dev_repo"),
        endpoint=store.get("endpoint"),
        env_file=store.get("env_file") or ".env",
    )


@dataclass(frozen=True)
class Sources:
    """Where the cells' spec files are (``spec_root``), the SLM-Lab checkout whose .dstack
    task is applied (``checkout``: ``repo_dir``, else the pipeline's checkout, else None), and
    the config's files the options came from (``config``: how error lines name them)."""

    spec_root: Path
    checkout: Path | None
    config: ConfigSource = DEFAULT_SOURCE

    @classmethod
    def from_options(cls, opts: dict, pipeline: dict) -> Sources:
        checkout = opts.get("repo_dir") or pipeline.get("checkout")
        checkout_path = Path(checkout).expanduser().resolve() if checkout else None
        root = pipeline.get("spec_root") or checkout_path or Path(".")
        config = pipeline.get("source", DEFAULT_SOURCE)
        return cls(spec_root=Path(root).resolve(), checkout=checkout_path, config=config)

    def inner_runner(self, opts: dict) -> str:
        """slm-lab (the checkout's own task) or embedded (slm-bench installed remotely)."""
        wanted = opts["inner_runner"]
        if wanted == "auto":
            return "slm-lab" if self.checkout else "embedded"
        if wanted == "slm-lab" and self.checkout is None:
            raise BenchError(
                f"{self.config.where('dstack', 'inner_runner')}: slm-lab needs an SLM-Lab"
                " checkout to mount (set checkout.root or dstack.repo_dir), or use"
                " inner_runner: embedded"
            )
        return wanted
