"""How SLM-Lab names things derived from an env id, a spec name or a spec body: run names, plot
files, env wildcards, dataset links, algorithm labels and their order. Shared by the table, the
config matrix, the runners and the rules."""

from __future__ import annotations

from collections.abc import Mapping

ALGORITHM_ORDER = ("REINFORCE", "SARSA", "DQN", "DDQN+PER", "A2C", "PPO", "SAC", "CrossQ")
_ALGORITHM_LABELS = {
    "VanillaDQN": "DQN",
    "DQN": "DQN",
    "ActorCritic": "A2C",
    "SoftActorCritic": "SAC",
    "Reinforce": "REINFORCE",
}

PLOT_SUFFIX = "_multi_trial_graph_mean_returns_ma_vs_frames.png"

# spec_name prefix -> algorithm label, longest prefixes first (ddqn_per before ddqn before dqn).
_SPEC_PREFIX_LABELS = (
    ("reinforce", "REINFORCE"),
    ("sarsa", "SARSA"),
    ("ddqn_per", "DDQN+PER"),
    ("ddqn", "DDQN"),
    ("dqn", "DQN"),
    ("a2c", "A2C"),
    ("ppo", "PPO"),
    ("sac", "SAC"),
    ("crossq", "CrossQ"),
)


def hf_link(folder: str, url: str) -> str:
    """The HF Data cell: ``[FOLDER](URL)``."""
    return f"[{folder}]({url})"


def dataset_url(repo: str, folder: str, endpoint: str = "https://huggingface.co") -> str:
    """Browse URL of a run folder inside a Hugging Face dataset repo."""
    return f"{endpoint.rstrip('/')}/datasets/{repo}/tree/main/data/{folder}"


def env_base(env_id: str) -> str:
    """Env id without an ``ALE/`` or ``playground/`` prefix, as SLM-Lab names plot files."""
    for prefix in ("ALE/", "playground/"):
        if env_id.startswith(prefix):
            return env_id[len(prefix) :]
    return env_id


def plot_png_name(env_id: str) -> str:
    """File name ``slm-lab plot`` gives an env's graph, e.g. ``CartPole-v1_multi_trial_...png``."""
    return f"{env_base(env_id)}{PLOT_SUFFIX}"


def algorithm_from_spec_name(spec_name: str) -> str:
    """Algorithm label implied by a spec name's prefix (shared tables have no Algorithm column)."""
    for prefix, label in _SPEC_PREFIX_LABELS:
        if spec_name == prefix or spec_name.startswith(prefix + "_"):
            return label
    return ""


def env_short(env_id: str) -> str:
    """SLM-Lab's run-name suffix for an env: ``ALE/Pong-v5`` -> ``pong``."""
    return env_id.split("/")[-1].split("-")[0].lower()


def run_name(spec_name: str, sets: Mapping[str, object] | None) -> str:
    """The name SLM-Lab gives a run: the spec name, plus ``_{envshort}`` when ``-s env=`` is set."""
    if sets and "env" in sets:
        return f"{spec_name}_{env_short(str(sets['env']))}"
    return spec_name


def algorithm_label(body: Mapping) -> str:
    """The algorithm name SLM-Lab's plots and BENCHMARKS.md use for a spec body."""
    agent = body.get("agent") or {}
    name = str((agent.get("algorithm") or {}).get("name", ""))
    if name == "DoubleDQN":
        memory = str((agent.get("memory") or {}).get("name", ""))
        return "DDQN+PER" if memory == "PrioritizedReplay" else "DDQN"
    return _ALGORITHM_LABELS.get(name, name)


def algorithm_rank(label: str) -> int:
    """Position of ``label`` in ALGORITHM_ORDER; unknown labels sort after the known ones."""
    try:
        return ALGORITHM_ORDER.index(label)
    except ValueError:
        return len(ALGORITHM_ORDER)
