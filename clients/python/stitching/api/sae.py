"""``client.sae``: train, transfer, encode/decode, import/export, describe and compare SAEs (SaeService).

SAEs are "sae" artifacts in SAELens format (cfg.json + sae_weights.safetensors). Transfer is the paper's exact
composition T_up . SAE . T_down: an SAE on model A and a stitch A <-> B give an SAE on model B.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Optional

import numpy as np

from .._refs import ArtifactLike, artifact_ref, set_fields
from ..operations import Operation
from ..sae.v1 import sae_pb2 as pb
from ..tensors import float32, to_numpy

if TYPE_CHECKING:
    from ..client import Client

_SPEC_FIELDS = set(pb.SaeSpec.DESCRIPTOR.fields_by_name)


class SaeApi:
    def __init__(self, client: "Client"):
        self._c = client

    def train(self, activation_set: ArtifactLike, *, hook: str = "", d_sae: int = 0, architecture: str = "", k: int = 0,
              init: Optional[ArtifactLike] = None, tokens: int = 0, batch_size: int = 0, lr: float = 0.0, seed: int = 0,
              eval_activation_set: Optional[ArtifactLike] = None, id: str = "", **options: Any) -> Operation[pb.TrainResult]:
        """Starts training an SAE on one hook of an activation set: ``d_sae`` latents, ``architecture`` "topk"
        (default), "batchtopk", "jumprelu" or "standard", ``k`` active latents. ``init`` (an SAE, e.g. a transferred
        one) warm-starts it. Any other TrainRequest or SaeSpec field goes in ``options`` (log_every=5,
        lr_schedule="warmup_decay", normalize_activations="none", apply_b_dec_to_input=False, ...).
        ``.wait()`` returns the TrainResult (``sae``: SaeInfo with metrics, ``flops``, ``ledger``)."""
        req = pb.TrainRequest(activation_set=artifact_ref(activation_set, "activation-set"), hook=hook,
                              sae=pb.SaeSpec(architecture=architecture, d_sae=d_sae, k=k),
                              tokens=tokens, batch_size=batch_size, lr=lr, seed=seed, id=id)
        if init is not None:
            req.init.CopyFrom(artifact_ref(init, "sae"))
        if eval_activation_set is not None:
            req.eval_activation_set.CopyFrom(artifact_ref(eval_activation_set, "activation-set"))
        set_fields(req.sae, {k_: v for k_, v in options.items() if k_ in _SPEC_FIELDS}, "SaeSpec")
        set_fields(req, {k_: v for k_, v in options.items() if k_ not in _SPEC_FIELDS}, "TrainRequest")
        return Operation(self._c, self._c.stub.sae.Train(req, timeout=self._c.timeout), pb.TrainResult)

    def transfer(self, sae: ArtifactLike, stitch: ArtifactLike, *, renormalize_decoder: bool = False, id: str = "",
                 model: str = "", hook: str = "") -> pb.SaeInfo:
        """The SAE on A carried to B through the stitch (model / hook of B default to the stitch manifest's)."""
        req = pb.TransferRequest(sae=artifact_ref(sae, "sae"), stitch=artifact_ref(stitch, "stitch"),
                                 renormalize_decoder=renormalize_decoder, id=id, model=model, hook=hook)
        return self._c.stub.sae.Transfer(req, timeout=self._c.timeout)

    def encode(self, sae: ArtifactLike, activations, *, timeout: Optional[float] = None) -> np.ndarray:
        """Latents [n, d_sae] (dense float32) of activations [n, d_in]."""
        req = pb.EncodeRequest(sae=artifact_ref(sae, "sae"), activations=float32("activations", activations))
        return to_numpy(self._c.stub.sae.Encode(req, timeout=timeout or self._c.timeout).latents)

    def decode(self, sae: ArtifactLike, latents, *, timeout: Optional[float] = None) -> np.ndarray:
        """Reconstructions [n, d_in] of latents [n, d_sae]."""
        req = pb.DecodeRequest(sae=artifact_ref(sae, "sae"), latents=float32("latents", latents))
        return to_numpy(self._c.stub.sae.Decode(req, timeout=timeout or self._c.timeout).reconstruction)

    def describe(self, sae: ArtifactLike) -> pb.SaeInfo:
        """Configuration, shapes, stored metrics and FLOPs ledger."""
        return self._c.stub.sae.Describe(pb.DescribeRequest(sae=artifact_ref(sae, "sae")), timeout=self._c.timeout)

    def import_from(self, path: str, *, format: str = "", id: str = "", model: str = "", hook: str = "") -> pb.SaeInfo:
        """Imports an SAELens or sparsify folder on the server (under its allowed roots) as an "sae" artifact."""
        req = pb.ImportRequest(path=path, format=format, id=id, model=model, hook=hook)
        return self._c.stub.sae.Import(req, timeout=self._c.timeout)

    def export_to(self, sae: ArtifactLike, path: str) -> pb.ExportResponse:
        """Writes the SAE as an SAELens folder at ``path`` on the server (a new folder under its allowed roots)."""
        return self._c.stub.sae.Export(pb.ExportRequest(sae=artifact_ref(sae, "sae"), path=path), timeout=self._c.timeout)

    def compare(self, scratch: ArtifactLike, warm: ArtifactLike, *, thresholds: Iterable[float] = (),
                relative_thresholds: Iterable[float] = (), window: int = 0, training_batch: bool = False) -> pb.CompareResponse:
        """Scratch vs warm-start training: FLOPs to explained-variance thresholds and the saving, power-law fits,
        decoder rotation."""
        req = pb.CompareRequest(scratch=artifact_ref(scratch, "sae"), warm=artifact_ref(warm, "sae"), thresholds=list(thresholds),
                                relative_thresholds=list(relative_thresholds), window=window, training_batch=training_batch)
        return self._c.stub.sae.Compare(req, timeout=self._c.timeout)

    def weights(self, sae: ArtifactLike) -> dict[str, np.ndarray]:
        """W_enc [d_in, d_sae], b_enc, W_dec [d_sae, d_in], b_dec (and threshold) from sae_weights.safetensors."""
        return self._c.artifacts.read_tensors(artifact_ref(sae, "sae"), file="sae_weights.safetensors")

    def cfg(self, sae: ArtifactLike) -> dict:
        """The SAELens cfg.json."""
        return self._c.artifacts.read_json(artifact_ref(sae, "sae"), file="cfg.json")
