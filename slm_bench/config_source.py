"""How error lines name the config: the file (or ``--config``) that set each key.

Snakemake merges ``config.yaml`` (or the ``--configfile`` files, in order, later ones winning)
and then ``--config KEY=VALUE``. The plan decides the naming once (``config_source``); the
typed config carries it (``BenchConfig.source``) into every job, so an error raised there names
the same file as one raised at plan time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

DEFAULT_CONFIG = "config.yaml"


class ConfigSource(str):
    """How error lines name the config (the text), and where one key's value came from (``of``).

    A value is named by the last layer that sets it; one no layer sets (a default) by the text.
    """

    layers: tuple[tuple[str, Mapping], ...]  # (name, data), last one wins

    def __new__(cls, text: str, layers: Sequence[tuple[str, Mapping]] = ()) -> ConfigSource:
        source = super().__new__(cls, text)
        source.layers = tuple(layers)
        return source

    def __reduce__(self) -> tuple:  # pickled for the jobs with the config (slm_bench/jobs.py)
        return (ConfigSource, (str(self), self.layers))

    def of(self, path: Sequence[object]) -> str:
        """The name of the layer that set the value at ``path`` (the whole text if none did)."""
        for name, data in reversed(self.layers):
            if _sets(data, list(path)):
                return name
        return str(self)

    def where(self, *path: object) -> str:
        """``FILE: KEY.SUBKEY``: how an error line starts that is about the value at ``path``."""
        return f"{self.of(path)}: {'.'.join(map(str, path))}"


DEFAULT_SOURCE = ConfigSource(DEFAULT_CONFIG)


def as_source(source: str) -> ConfigSource:
    """``source`` as a ConfigSource (a plain name names every key)."""
    return source if isinstance(source, ConfigSource) else ConfigSource(source)


def _sets(data: object, path: list) -> bool:
    """Whether ``data`` sets the value at ``path`` (a value that is no mapping sets all below)."""
    for key in path:
        if not isinstance(data, Mapping):
            return True
        if key not in data:
            return False
        data = data[key]
    return True


def config_source(
    configfiles: Sequence[str | os.PathLike],
    cwd: Path | None = None,
    overrides: Mapping | None = None,
) -> ConfigSource:
    """How error lines name the config: the ``--configfile`` files, else config.yaml; each key
    by the one that set it, or ``--config`` for a command-line ``overrides`` value."""
    here = (cwd or Path.cwd()).resolve()
    names, layers = [], []
    for configfile in configfiles or [DEFAULT_CONFIG]:
        path = (here / configfile).resolve()
        names.append(str(path.relative_to(here)) if path.is_relative_to(here) else str(path))
        layers.append((names[-1], _read_layer(path)))
    if overrides:
        layers.append(("--config", overrides))
    return ConfigSource(", ".join(names), layers)


def _read_layer(path: Path) -> Mapping:
    """A config file's own keys (empty when it cannot be read: Snakemake has said why)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return {}
    return data if isinstance(data, Mapping) else {}
