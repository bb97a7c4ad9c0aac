"""The spec's net block as the embedded runner reads it for SB3: hidden layers and activation
(an MLPNet or a TorchArcNet MLP arc), the optimizer, the learning rate's schedule, gradient
clipping. Every error names the spec and the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from slm_bench.runners.embedded.spec_reader import Decay, FrameSchedule, SpecReader

# hid_layers_activation / arc activation modules -> torch.nn class names.
_ACTIVATIONS = {
    name.lower(): name
    for name in ("ReLU", "Tanh", "SELU", "ELU", "LeakyReLU", "Sigmoid", "GELU", "SiLU", "Mish")
}
_LINEAR_LAYERS = ("LazyLinear", "Linear")
_OPTIMIZERS = ("Adam", "AdamW", "RMSprop", "SGD", "Adamax", "NAdam", "RAdam")


def hidden_layers(reader: SpecReader) -> tuple[list[int], str | None]:
    """Hidden layer sizes and activation: MLPNet ``hid_layers`` or a TorchArcNet MLP ``arc``."""
    net = reader.get("agent.net", {})
    activation = net.get("hid_layers_activation")
    arc = net.get("arc")
    if arc is None:
        layers = net.get("hid_layers", [64, 64])
        if not isinstance(layers, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in layers
        ):
            raise reader.error("agent.net.hid_layers", f"expected a list of sizes, got {layers!r}")
        return list(layers), activation
    modules = arc.get("modules") if isinstance(arc, Mapping) else None
    bodies = [m.get("Sequential") for m in (modules or {}).values() if isinstance(m, Mapping)]
    if not bodies or not isinstance(bodies[0], list):
        raise reader.error("agent.net.arc", "expected modules with a Sequential list of layers")
    sizes: list[int] = []
    arc_activation = None
    for layer in bodies[0]:
        if isinstance(layer, Mapping):
            kind, args = next(iter(layer.items()))
        else:
            kind, args = layer, None
        if kind in _LINEAR_LAYERS:
            sizes.append(int((args or {}).get("out_features", 0)))
        elif str(kind).lower() in _ACTIVATIONS:
            arc_activation = arc_activation or kind
        else:
            raise reader.error(
                "agent.net.arc",
                f"layer {kind} is not supported by the embedded runner (MLP arcs of LazyLinear "
                "and activations only); use runner: slm-lab",
            )
    if not sizes or min(sizes) <= 0:
        raise reader.error("agent.net.arc", "expected LazyLinear layers with out_features")
    return sizes, arc_activation or activation


def activation_class(name: str | None, reader: SpecReader) -> str | None:
    if name is None:
        return None
    canonical = _ACTIVATIONS.get(str(name).lower())
    if canonical is None:
        raise reader.error(
            "agent.net.hid_layers_activation",
            f"expected one of {', '.join(_ACTIVATIONS)}, got {name!r}",
        )
    return canonical


def optimizer(reader: SpecReader) -> tuple[str, float, str]:
    """(torch.optim class name, learning rate, the spec path it came from)."""
    # SLM-Lab's ActorCritic replaces the actor net's optim_spec with actor_optim_spec
    for path in ("agent.net.actor_optim_spec", "agent.net.optim_spec"):
        block = reader.get(path)
        if isinstance(block, Mapping):
            name = str(block.get("name", "Adam")).removeprefix("Global")
            if name not in _OPTIMIZERS:
                raise reader.error(
                    f"{path}.name", f"expected one of {', '.join(_OPTIMIZERS)}, got {name!r}"
                )
            return name, reader.number(f"{path}.lr"), path
    raise reader.error("agent.net.optim_spec", "missing (expected name and lr)")


def learning_rate(
    reader: SpecReader, lr: float, max_frame: int, notes: list[str]
) -> float | FrameSchedule:
    scheduler = reader.get("agent.net.lr_scheduler_spec")
    if not scheduler:
        return lr
    name = scheduler.get("name")
    if name == "LinearToZero":
        frames = reader.number("agent.net.lr_scheduler_spec.frame", max_frame)
        return FrameSchedule(Decay("linear_decay", lr, 0.0, 0, frames), max_frame)
    notes.append(f"agent.net.lr_scheduler_spec {name} is not mapped: constant learning rate")
    return lr


def max_grad_norm(reader: SpecReader) -> float:
    value = reader.get("agent.net.clip_grad_val")
    return math.inf if value is None else reader.number("agent.net.clip_grad_val")
