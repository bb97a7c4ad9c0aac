"""How SLM-Lab names things derived from an env id or a spec name: plot files, env wildcards,
dataset links and algorithm labels. Shared by the table, the config matrix and the rules."""

from __future__ import annotations

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
