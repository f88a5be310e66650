"""Builders for the interventions of a Forward or Generate call (activations.proto, message Intervention).

Each applies at one hook (TransformerLens names: blocks.{l}.hook_resid_pre, ...), to every token position or to
``positions``; several at one hook apply in the order given.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

import numpy as np

from ._refs import ArtifactLike, artifact_ref
from .activations.v1 import activations_pb2 as pb
from .tensors import float32

_STITCH_CHAINS = {  # direction -> (matrices, biases) of stitch.safetensors, applied in order
    "up": (["P_up"], ["b_up"]), "down": (["P_down"], ["b_down"]),
    "up_down": (["P_up", "P_down"], ["b_up", "b_down"]), "down_up": (["P_down", "P_up"], ["b_down", "b_up"]),
}


class Interventions:
    """``Interventions.clamp(hook, v, 3.0)`` and friends, each one Intervention message."""

    @staticmethod
    def replace(hook: str, value, positions: Iterable[int] = ()) -> pb.Intervention:
        """The hook's value replaced: [batch, tokens, d], [tokens, d] or [d]."""
        return pb.Intervention(hook=hook, positions=list(positions), replace=float32("value", value))

    @staticmethod
    def add(hook: str, vector, scale: float = 1.0, positions: Iterable[int] = ()) -> pb.Intervention:
        """h' = h + scale * vector."""
        return pb.Intervention(hook=hook, positions=list(positions), add=pb.AddVector(vector=float32("vector", vector), scale=scale))

    @staticmethod
    def clamp(hook: str, direction, value: float, positions: Iterable[int] = ()) -> pb.Intervention:
        """h' = h + (value - <h, v>) v, v = direction / |direction| (steering)."""
        return pb.Intervention(hook=hook, positions=list(positions), clamp=pb.Clamp(direction=float32("direction", direction), value=value))

    @staticmethod
    def affine(hook: str, maps: Sequence[tuple[object, Optional[object]]], positions: Iterable[int] = ()) -> pb.Intervention:
        """maps: [(P, b or None), ...] applied in order (h P + b); the last returns to the hook's width."""
        chain = pb.AffineChain(maps=[pb.Affine(matrix=float32("P", p), bias=None if b is None else float32("b", b)) for p, b in maps])
        return pb.Intervention(hook=hook, positions=list(positions), affine=chain)

    @staticmethod
    def stitch(hook: str, stitch: ArtifactLike, direction: str = "up_down", positions: Iterable[int] = ()) -> pb.Intervention:
        """A stored stitch applied at the hook: "up_down" (A -> B -> A, at A's hook) or "down_up" (at B's), the
        round trips that keep the hook's width; the server reads the matrices from the artifact."""
        matrices, biases = _STITCH_CHAINS[direction]
        chain = pb.ArtifactAffineChain(artifact=artifact_ref(stitch, "stitch"), file="stitch.safetensors", matrices=matrices, biases=biases)
        return pb.Intervention(hook=hook, positions=list(positions), artifact_affine=chain)

    @staticmethod
    def ablate(hook: str, mean=None, positions: Iterable[int] = ()) -> pb.Intervention:
        """Zero ablation, or mean ablation with ``mean`` [d]."""
        return pb.Intervention(hook=hook, positions=list(positions),
                               ablate=pb.Ablate(mean=None if mean is None else float32("mean", np.asarray(mean))))
