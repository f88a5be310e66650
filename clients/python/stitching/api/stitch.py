"""``client.stitch``: layer matching, fitting affine stitches, applying them, spliced evaluation (StitchService).

A stitch maps hook activations of model A to model B and back: T_up(h_A) = h_A P_up + b_up, T_down(h_B) =
h_B P_down + b_down (row vectors). Sources of a fit are activation sets of one paired extraction, or numpy
arrays [n, d] with aligned rows (uploaded as a content-addressed "tensors" artifact).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional, Union

import numpy as np

from .._refs import ArtifactLike, ModelLike, artifact_ref, enum_value, model_spec, set_fields
from ..common.v1 import artifacts_pb2
from ..operations import Operation
from ..stitch.v1 import stitch_pb2 as pb
from ..tensors import float32, int64, to_numpy

if TYPE_CHECKING:
    from ..client import Client

Source = Union[ArtifactLike, np.ndarray, pb.ActivationSource, "tuple[ArtifactLike, str]"]
"""An activation-set id or ref (its only hook), (activation set, hook), a numpy array [n, d], or an ActivationSource."""


@dataclass(frozen=True)
class LayerMatch:
    """SVCCA / CKA / held-out FVU between every hook of A (rows) and of B (columns), and B's hook chosen per A's."""
    hooks_a: list[str]
    hooks_b: list[str]
    svcca: np.ndarray
    cka: np.ndarray
    heldout_svcca: np.ndarray
    fvu_up: np.ndarray
    fvu_down: np.ndarray
    best: dict[str, str]     # hook of A -> hook of B chosen by ``rule``
    rule: str
    tokens: int
    response: pb.MatchLayersResponse


def _direction(direction: Union[str, int]) -> int:
    return enum_value(pb.Direction, direction, "DIRECTION_")


class StitchApi:
    def __init__(self, client: "Client"):
        self._c = client

    def _source(self, value: Source, hook: str = "") -> pb.ActivationSource:
        if isinstance(value, pb.ActivationSource):
            return value
        if isinstance(value, np.ndarray):
            ref = self._c.artifacts.put({"activations": np.asarray(value, np.float32)})
            return pb.ActivationSource(artifact=ref, tensor="activations")
        if isinstance(value, tuple):
            value, hook = value
        return pb.ActivationSource(artifact=artifact_ref(value, "activation-set"), tensor=hook)

    def match_layers(self, a: ArtifactLike, b: ArtifactLike, *, hooks_a: Iterable[str] = (), hooks_b: Iterable[str] = (),
                     max_tokens: int = 0, svcca_variance: float = 0.0, rule: str = "", include_embeddings: bool = False,
                     timeout: Optional[float] = None) -> LayerMatch:
        """Compares every hook of activation set ``a`` with every hook of ``b`` (one paired extraction); rule:
        "heldout_fvu" (default), "heldout_svcca" or "svcca"."""
        req = pb.MatchLayersRequest(activation_set_a=artifact_ref(a, "activation-set"), activation_set_b=artifact_ref(b, "activation-set"),
                                    hooks_a=list(hooks_a), hooks_b=list(hooks_b), max_tokens=max_tokens,
                                    svcca_variance=svcca_variance, rule=rule, include_embeddings=include_embeddings)
        r = self._c.stub.stitch.MatchLayers(req, timeout=timeout or self._c.timeout)
        shape = (len(r.hooks_a), len(r.hooks_b))

        def grid(values) -> np.ndarray:
            return np.array(values, np.float64).reshape(shape) if len(values) else np.full(shape, np.nan)

        return LayerMatch(list(r.hooks_a), list(r.hooks_b), grid(r.svcca), grid(r.cka), grid(r.heldout_svcca),
                          grid(r.fvu_up), grid(r.fvu_down), {r.hooks_a[i]: r.hooks_b[j] for i, j in enumerate(r.best_b)},
                          r.rule, r.tokens, r)

    def fit(self, a: Source, b: Source, *, hook_a: str = "", hook_b: str = "", method: str = "lstsq", ridge: float = 0.0,
            heldout_fraction: float = 0.0, max_heldout_tokens: int = 0, max_tokens: int = 0,
            adam: Union[pb.AdamSettings, Mapping[str, Any], None] = None, id: str = "") -> Operation[pb.FitResult]:
        """Starts fitting a stitch A <-> B ("lstsq", the default, or "adam" with ``adam`` settings such as
        {"steps": 2000, "learning_rate": 1e-3}). ``.wait()`` returns the FitResult: ``stitch`` (its ref), held-out
        ``metrics`` (fvu_up, fvu_down, ...), ``flops``."""
        req = pb.FitRequest(a=self._source(a, hook_a), b=self._source(b, hook_b), method=method, ridge=ridge,
                            heldout_fraction=heldout_fraction, max_heldout_tokens=max_heldout_tokens, max_tokens=max_tokens, id=id)
        if isinstance(adam, pb.AdamSettings):
            req.adam.CopyFrom(adam)
        elif adam:
            set_fields(req.adam, dict(adam), "AdamSettings")
            if "alpha" in adam:
                req.adam.alpha_set = True
        return Operation(self._c, self._c.stub.stitch.Fit(req, timeout=self._c.timeout), pb.FitResult)

    def import_stitch(self, P_up, b_up, P_down, b_down, *, id: str,
                      metadata: Optional[Mapping[str, str]] = None) -> artifacts_pb2.ArtifactManifest:
        """A stitch artifact ``id`` from numpy matrices (P_up [d_A, d_B], b_up [d_B], P_down [d_B, d_A], b_down [d_A]);
        metadata (model_a, model_b, hook_a, hook_b, ...) goes into its manifest."""
        tensors = {"P_up": P_up, "b_up": b_up, "P_down": P_down, "b_down": b_down}
        ref = self._c.artifacts.put({k: np.asarray(v, np.float32) for k, v in tensors.items()}, prefix="stitch-src")
        req = pb.ImportStitchRequest(tensors=ref, id=id, metadata=dict(metadata or {}))
        return self._c.stub.stitch.ImportStitch(req, timeout=self._c.timeout)

    def read(self, stitch: ArtifactLike) -> dict[str, np.ndarray]:
        """The stitch's matrices: {"P_up", "b_up", "P_down", "b_down"}."""
        return self._c.artifacts.read_tensors(artifact_ref(stitch, "stitch"), file="stitch.safetensors")

    def apply(self, stitch: ArtifactLike, activations, direction: Union[str, int] = "up", *,
              timeout: Optional[float] = None) -> np.ndarray:
        """Activations [..., d] of the source side mapped "up" (A -> B), "down", "up_down" or "down_up"."""
        req = pb.ApplyRequest(stitch=artifact_ref(stitch, "stitch"), direction=_direction(direction),
                              activations=float32("activations", activations))
        return to_numpy(self._c.stub.stitch.Apply(req, timeout=timeout or self._c.timeout).activations)

    def transfer_direction(self, stitch: ArtifactLike, vectors, direction: Union[str, int] = "up", *,
                           renormalize: bool = False) -> np.ndarray:
        """Directions [d] or [k, d] carried across without bias (v P_up or v P_down), unit-normed on request."""
        req = pb.TransferDirectionRequest(stitch=artifact_ref(stitch, "stitch"), direction=_direction(direction),
                                          vectors=float32("vectors", vectors), renormalize=renormalize)
        return to_numpy(self._c.stub.stitch.TransferDirection(req, timeout=self._c.timeout).vectors)

    def evaluate_splice(self, model_a: ModelLike, model_b: ModelLike, stitch: ArtifactLike, *, layer_a: int, layer_b: int,
                        token_ids=None, texts: Optional[Iterable[str]] = None, context_length: int = 0, max_rows: int = 0,
                        batch_size: int = 0, timeout: Optional[float] = None) -> pb.EvaluateSpliceResponse:
        """The paper's Table 1: next-token CE of A, B and the spliced runs (A->B, B->A, round trips) with ablation
        floors, on token rows [rows, T] or held-out ``texts``. ``.rows`` has one SpliceRow per run."""
        req = pb.EvaluateSpliceRequest(model_a=model_spec(model_a), model_b=model_spec(model_b), layer_a=layer_a, layer_b=layer_b,
                                       stitch=artifact_ref(stitch, "stitch"), texts=list(texts or []),
                                       context_length=context_length, max_rows=max_rows, batch_size=batch_size)
        if token_ids is not None:
            req.token_ids.CopyFrom(int64("token_ids", token_ids))
        return self._c.stub.stitch.EvaluateSplice(req, timeout=timeout or self._c.timeout)
