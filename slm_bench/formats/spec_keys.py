"""The spec keys SLM-Lab's agent reads, so a search can be told apart from a typo.

SLM-Lab's search (slm_lab/experiment/search.py) writes every searched value with ``pydash.set_``,
which creates a missing key: a typo such as ``agent.algorithm.gama`` is searched, changes nothing
and is written into the spec as the "best" value. A searched key is therefore accepted only when
the resolved spec holds it, or when the class the spec names (``agent.algorithm.name``,
``agent.net.type``, ``agent.memory.name``) reads it: SLM-Lab's classes take their keys from the
spec with ``util.set_attr(self, spec, [keys])`` (filling defaults for the ones left out), by
subscript, ``.get`` or ``ps.get``. Those reads are taken from SLM-Lab's source by ``extract``;
``slm_bench/data/slm_lab_spec_keys.json`` is the result for the SLM-Lab version the project
targets (a test checks it against the source when the source is there).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

BUNDLED_PATH = Path(__file__).resolve().parents[1] / "data" / "slm_lab_spec_keys.json"
SECTIONS = ("algorithm", "net", "memory")
# The class-name key of each agent section (``agent.algorithm.name: PPO``, ``net.type: MLPNet``).
CLASS_KEY = {"algorithm": "name", "net": "type", "memory": "name"}


def _spec_section(node: ast.expr) -> str | None:
    """``algorithm`` for ``self.algorithm_spec`` or ``algorithm_spec`` (likewise net, memory)."""
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
    for section in SECTIONS:  # also critic_net_spec, actor_net_spec
        if name == f"{section}_spec" or str(name).endswith(f"_{section}_spec"):
            return section
    return None


def _text(node: ast.expr) -> str | None:
    """The string a literal holds, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _strings(node: ast.expr) -> list[str]:
    if isinstance(node, ast.List | ast.Tuple):
        return [text for e in node.elts if (text := _text(e))]
    return []


def _reads(tree: ast.AST) -> dict[str, set[str]]:
    """Section -> keys read from ``<section>_spec`` anywhere under ``tree``."""
    reads: dict[str, set[str]] = {}

    def add(section: str | None, keys: list[str]) -> None:
        if section:
            reads.setdefault(section, set()).update(keys)

    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and (key := _text(node.slice)):
            add(_spec_section(node.value), [key])
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func, args = node.func, node.args
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        first = args[0]
        if name == "get" and isinstance(func, ast.Attribute) and _spec_section(func.value):
            add(_spec_section(func.value), [key] if (key := _text(first)) else [])
        elif name == "get" and len(args) > 1 and (key := _text(args[1])):  # ps.get(spec, "key")
            add(_spec_section(first), [key.split(".")[0]])
        elif name == "set_attr" and len(args) == 3:  # util.set_attr(self, spec, [keys])
            add(_spec_section(args[1]), _strings(args[2]))
    return reads


def extract(package_dir: Path) -> dict[str, dict[str, list[str]]]:
    """Class name -> section -> the keys the class (with the classes it inherits) reads, from
    SLM-Lab's ``slm_lab/agent/{algorithm,net,memory}`` source."""
    own: dict[str, dict[str, set[str]]] = {}
    bases: dict[str, list[str]] = {}
    for section in SECTIONS:
        for path in sorted((package_dir / "agent" / section).glob("*.py")):
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                if isinstance(node, ast.ClassDef):
                    own[node.name] = _reads(node)
                    bases[node.name] = [b.id for b in node.bases if isinstance(b, ast.Name)]

    def inherited(name: str, seen: frozenset = frozenset()) -> dict[str, set[str]]:
        merged: dict[str, set[str]] = {k: set(v) for k, v in own.get(name, {}).items()}
        for base in bases.get(name, []):
            if base not in seen:
                for section, keys in inherited(base, seen | {name}).items():
                    merged.setdefault(section, set()).update(keys)
        return merged

    return {
        name: {section: sorted(keys) for section, keys in sorted(inherited(name).items())}
        for name in sorted(own)
    }


@lru_cache(maxsize=1)
def bundled() -> dict[str, dict[str, list[str]]]:
    return json.loads(BUNDLED_PATH.read_text(encoding="utf-8"))


def read_by_slm_lab(spec: Mapping, path: str) -> bool:
    """Whether SLM-Lab reads ``path`` (``agent.SECTION.KEY``) for the classes ``spec`` names:
    the section's own class, and the algorithm class, which reads some net and memory keys."""
    parts = path.split(".")
    agent = spec.get("agent")
    if len(parts) != 3 or parts[0] != "agent" or parts[1] not in SECTIONS:
        return False
    if not isinstance(agent, Mapping):
        return False
    section, key = parts[1], parts[2]
    classes = bundled()
    readers = []
    for owner in (section, "algorithm"):
        block = agent.get(owner)
        if isinstance(block, Mapping) and isinstance(block.get(CLASS_KEY[owner]), str):
            readers.append(classes.get(block[CLASS_KEY[owner]], {}))
    return any(key in reader.get(section, ()) for reader in readers)
