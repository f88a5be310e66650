"""``client.eval``: SAE evaluation on held-out tokens, and probe, steering and feature-level transfer (EvalService).
docs/metrics.md defines every number."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Optional, Sequence, Union

from .._refs import ArtifactLike, ModelLike, artifact_ref, model_spec
from ..eval.v1 import eval_pb2 as pb
from ..operations import Operation
from ..tensors import int64

if TYPE_CHECKING:
    from ..client import Client

Dataset = Union[str, pb.ProbeDataset, Sequence[tuple]]
"""A named set ("brown:pos", "brown:genre"), a ProbeDataset, or examples (text, label) / (text, label, split)."""


def probe_dataset(dataset: Dataset, class_names: Iterable[str] = (), classes: Iterable[int] = ()) -> pb.ProbeDataset:
    """A ProbeDataset from a name or from document-level examples; split "" assigns train/validation/test by position."""
    if isinstance(dataset, pb.ProbeDataset):
        return dataset
    if isinstance(dataset, str):
        return pb.ProbeDataset(named=dataset, class_names=list(class_names), classes=list(classes))
    examples = [pb.LabelledText(text=e[0], label=int(e[1]), split=e[2] if len(e) > 2 else "") for e in dataset]
    return pb.ProbeDataset(examples=examples, class_names=list(class_names), classes=list(classes))


def _ref(value: Optional[ArtifactLike], kind: str):
    return None if value is None else artifact_ref(value, kind)


class EvalApi:
    def __init__(self, client: "Client"):
        self._c = client

    def evaluate_sae(self, model: ModelLike, sae: ArtifactLike, token_ids, *, hook: str = "", batch_size: int = 0,
                     max_rows: int = 0, random_seed: Optional[int] = None, timeout: Optional[float] = None) -> pb.SaeEvaluation:
        """An SAE on held-out token rows [rows, T]: l0, mse, fvu, explained_variance, ce_clean, ce_spliced,
        loss_recovered, kl, dead_fraction, ... ``random_seed`` evaluates a random SAE of its shape instead (the floor)."""
        req = pb.EvaluateSaeRequest(model=model_spec(model), sae=artifact_ref(sae, "sae"), hook=hook,
                                    token_ids=int64("token_ids", token_ids), batch_size=batch_size, max_rows=max_rows)
        if random_seed is not None:
            req.random.seed = random_seed
        return self._c.stub.eval.EvaluateSae(req, timeout=timeout or self._c.timeout)

    def probes(self, model_a: ModelLike, model_b: ModelLike, dataset: Dataset, *, hook_a: str = "", hook_b: str = "",
               stitch: Optional[ArtifactLike] = None, sae_a: Optional[ArtifactLike] = None,
               sae_transferred: Optional[ArtifactLike] = None, sae_b: Optional[ArtifactLike] = None,
               k: Iterable[int] = (), context: int = 0, max_tokens_per_split: int = 0, max_examples_per_class: int = 0,
               seed: int = 0, l2: Iterable[float] = (), batch_size: int = 0,
               class_names: Iterable[str] = ()) -> Operation[pb.ProbeEvaluation]:
        """Starts probe transfer: dense probes on A and B, A's moved through the stitch, sparse probes on SAE latents
        and their transfer. ``.wait()`` returns the ProbeEvaluation (tasks with scores and 95% intervals)."""
        req = pb.EvaluateProbesRequest(model_a=model_spec(model_a), model_b=model_spec(model_b), hook_a=hook_a, hook_b=hook_b,
                                       stitch=_ref(stitch, "stitch"), sae_a=_ref(sae_a, "sae"),
                                       sae_transferred=_ref(sae_transferred, "sae"), sae_b=_ref(sae_b, "sae"),
                                       dataset=probe_dataset(dataset, class_names), k=list(k), context=context,
                                       max_tokens_per_split=max_tokens_per_split, max_examples_per_class=max_examples_per_class,
                                       seed=seed, l2=list(l2), batch_size=batch_size)
        return Operation(self._c, self._c.stub.eval.EvaluateProbes(req, timeout=self._c.timeout), pb.ProbeEvaluation)

    def steering(self, model_a: ModelLike, model_b: ModelLike, stitch: ArtifactLike, *, hook_a: str, hook_b: str,
                 dataset: Optional[Dataset] = None, target: int = 0, prompts: int = 0, prompt_words: int = 0,
                 new_tokens: int = 0, context: int = 0, max_tokens: int = 0, seed: int = 0,
                 class_names: Iterable[str] = ()) -> Operation[pb.SteeringEvaluation]:
        """Starts steering-vector transfer: A's difference-of-means direction clamped on A, moved to B through the
        stitch, against B's own; generations judged by a classifier. ``.wait()`` returns the SteeringEvaluation."""
        req = pb.EvaluateSteeringRequest(model_a=model_spec(model_a), model_b=model_spec(model_b), hook_a=hook_a, hook_b=hook_b,
                                         stitch=artifact_ref(stitch, "stitch"), target=target, prompts=prompts,
                                         prompt_words=prompt_words, new_tokens=new_tokens, context=context,
                                         max_tokens=max_tokens, seed=seed)
        if dataset is not None:
            req.dataset.CopyFrom(probe_dataset(dataset, class_names))
        return Operation(self._c, self._c.stub.eval.EvaluateSteering(req, timeout=self._c.timeout), pb.SteeringEvaluation)

    def features(self, model_a: ModelLike, model_b: ModelLike, *, sae_a: ArtifactLike, sae_transferred: ArtifactLike,
                 stitch: ArtifactLike, max_tokens: int = 0, context: int = 0, sentences: int = 0, rewrites: int = 0,
                 min_active: int = 0, seed: int = 0) -> Operation[pb.FeatureEvaluation]:
        """Starts feature-level transfer on held-out Brown test tokens: per-latent attribution correlations between
        A and B, structural vs semantic latents, entropy latents. ``.wait()`` returns the FeatureEvaluation."""
        req = pb.EvaluateFeaturesRequest(model_a=model_spec(model_a), model_b=model_spec(model_b), sae_a=artifact_ref(sae_a, "sae"),
                                         sae_transferred=artifact_ref(sae_transferred, "sae"), stitch=artifact_ref(stitch, "stitch"),
                                         max_tokens=max_tokens, context=context, sentences=sentences, rewrites=rewrites,
                                         min_active=min_active, seed=seed)
        return Operation(self._c, self._c.stub.eval.EvaluateFeatures(req, timeout=self._c.timeout), pb.FeatureEvaluation)
