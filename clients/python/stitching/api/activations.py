"""``client.activations``: models, tokenizers, forward passes with interventions, generation, extraction."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from .._refs import ArtifactLike, ModelLike, artifact_ref, bos_policy, model_spec
from ..activations.v1 import activations_pb2 as pb
from ..operations import Operation
from ..tensors import concatenate, float32, int64, to_numpy

if TYPE_CHECKING:
    from ..client import Client


@dataclass(frozen=True)
class Tokens:
    """One tokenized text: ids, token strings, character offsets [start, end) and the special-token mask."""
    ids: np.ndarray
    tokens: list[str]
    starts: np.ndarray
    ends: np.ndarray
    special: np.ndarray


@dataclass
class ForwardResult:
    """What a forward pass returned; entries that were not asked for are None. ``result[hook]`` is a capture."""
    captured: dict[str, np.ndarray] = field(default_factory=dict)  # hook -> [batch, tokens, d] float32
    token_ids: Optional[np.ndarray] = None      # [batch, tokens] the ids that ran
    logits: Optional[np.ndarray] = None         # [batch, tokens, vocab]
    loss: Optional[np.ndarray] = None           # [batch, tokens - 1] next-token loss
    mean_loss: Optional[float] = None
    kl: Optional[np.ndarray] = None             # [batch, tokens] KL(clean || this run)
    mean_kl: Optional[float] = None
    clean_mean_loss: Optional[float] = None
    top_k_ids: Optional[np.ndarray] = None      # [batch, tokens, k]
    top_k_logits: Optional[np.ndarray] = None

    def __getitem__(self, hook: str) -> np.ndarray:
        return self.captured[hook]

    def as_dict(self) -> dict:
        """{hook: array, "logits": ..., "mean_loss": ...} with the entries that are set (the 0.x client's form)."""
        out: dict = dict(self.captured)
        out.update({k: v for k, v in vars(self).items() if k != "captured" and v is not None})
        return out


@dataclass(frozen=True)
class Generation:
    prompt_ids: np.ndarray
    new_ids: np.ndarray
    text: str           # the continuation (new_ids), detokenized
    stop_reason: str    # "length" or "eos"


def corpus_spec(*, texts=None, text_files=None, jsonl=None, text_field: str = "text", corpus: Optional[str] = None,
                max_documents: int = 0) -> pb.CorpusSpec:
    """Exactly one source: inline ``texts``, ``text_files`` / ``jsonl`` paths on the server, or a named ``corpus``
    ("brown:train", "brown:validation", "brown:test")."""
    if sum(x is not None for x in (texts, text_files, jsonl, corpus)) != 1:
        raise ValueError("give exactly one of texts, text_files, jsonl, corpus")
    c = pb.CorpusSpec(max_documents=max_documents)
    if texts is not None:
        c.texts.texts.extend([texts] if isinstance(texts, str) else texts)
    elif text_files is not None:
        c.text_files.paths.extend(text_files)
    elif jsonl is not None:
        c.jsonl.paths.extend(jsonl)
        c.jsonl.text_field = text_field
    else:
        c.named = corpus
    return c


class ActivationsApi:
    """The activations service: the only one that holds language models."""

    def __init__(self, client: "Client"):
        self._c = client

    # --- models ---------------------------------------------------------------------------------------------
    def models(self) -> list[pb.ModelInfo]:
        """Models this host can find: its model store, the Hugging Face cache, loaded ones."""
        return list(self._c.stub.activations.ListModels(pb.ListModelsRequest(), timeout=self._c.timeout).models)

    def describe(self, model: ModelLike) -> pb.ModelInfo:
        """Shape, family, hooks and tokenizer facts (loads nothing)."""
        return self._c.stub.activations.DescribeModel(pb.DescribeModelRequest(model=model_spec(model)), timeout=self._c.timeout)

    def load(self, model: ModelLike, *, dtype: str = "", device: str = "", allow_download: bool = False,
             timeout: Optional[float] = None) -> pb.ModelInfo:
        req = pb.LoadModelRequest(model=model_spec(model, dtype, device), allow_download=allow_download)
        return self._c.stub.activations.LoadModel(req, timeout=timeout or self._c.timeout)

    def unload(self, model: ModelLike) -> bool:
        return self._c.stub.activations.UnloadModel(pb.UnloadModelRequest(model=model_spec(model)), timeout=self._c.timeout).unloaded

    def weights(self, model: ModelLike, names: Sequence[str] = ("unembed.W_U",), *, timeout: Optional[float] = None) -> dict[str, np.ndarray]:
        """Weight matrices by TransformerLens name, float32 ("unembed.W_U" [d_model, d_vocab])."""
        stream = self._c.stub.activations.ReadWeights(pb.ReadWeightsRequest(model=model_spec(model), names=list(names)), timeout=timeout)
        return concatenate(stream)

    # --- tokens ---------------------------------------------------------------------------------------------
    def tokenize(self, model: ModelLike, texts: Union[str, Iterable[str]], *, bos=None) -> list[Tokens]:
        """One Tokens per text; ``bos``: None (the tokenizer's default), "always" or "never"."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        r = self._c.stub.activations.Tokenize(pb.TokenizeRequest(model=model_spec(model), texts=texts, bos_policy=bos_policy(bos)), timeout=self._c.timeout)
        return [Tokens(np.array(t.ids, np.int32), list(t.tokens), np.array(t.starts, np.int32), np.array(t.ends, np.int32),
                       np.array(t.special, bool)) for t in r.texts]

    def detokenize(self, model: ModelLike, ids, *, skip_special_tokens: bool = False) -> str:
        req = pb.DetokenizeRequest(model=model_spec(model), ids=[int(i) for i in np.asarray(ids).reshape(-1)], skip_special_tokens=skip_special_tokens)
        return self._c.stub.activations.Detokenize(req, timeout=self._c.timeout).text

    # --- runs -----------------------------------------------------------------------------------------------
    def forward(self, model: ModelLike, token_ids=None, *, text: Optional[str] = None, bos=None, capture: Iterable[str] = (),
                interventions: Iterable[pb.Intervention] = (), start_layer: int = 0, start_residual=None,
                logits: bool = False, loss: bool = False, kl: bool = False, top_k: int = 0,
                timeout: Optional[float] = None) -> ForwardResult:
        """One forward pass over ``token_ids`` [batch, tokens] (or [tokens], or one ``text``), capturing hooks,
        with interventions (see stitching.Interventions); ``start_layer`` + ``start_residual`` [batch, tokens, d]
        start mid-model. loss / kl / logits / top_k ask for those outputs."""
        req = pb.ForwardRequest(model=model_spec(model), capture=list(capture), interventions=list(interventions),
                                start_layer=start_layer, return_logits=logits, return_loss=loss, return_kl=kl,
                                top_k=top_k, bos_policy=bos_policy(bos), text=text or "")
        if token_ids is not None:
            req.token_ids.CopyFrom(int64("token_ids", token_ids))
        if start_residual is not None:
            req.start_residual.CopyFrom(float32("start_residual", start_residual))
        r = self._c.stub.activations.Forward(req, timeout=timeout or self._c.timeout)
        out = ForwardResult(captured={t.name: to_numpy(t) for t in r.captured})
        for name in ("logits", "loss", "kl", "top_k_ids", "top_k_logits", "token_ids"):
            if r.HasField(name):
                setattr(out, name, to_numpy(getattr(r, name)))
        if loss:
            out.mean_loss = r.mean_loss
        if kl:
            out.mean_kl, out.clean_mean_loss = r.mean_kl, r.clean_mean_loss
        return out

    def generate(self, model: ModelLike, prompt: str = "", *, prompt_ids: Iterable[int] = (), bos=None,
                 max_new_tokens: int = 32, temperature: float = 0.0, top_k: int = 0, top_p: float = 0.0, seed: int = 0,
                 interventions: Iterable[pb.Intervention] = (), ignore_eos: bool = False,
                 intervene_on_prompt_only: bool = False, timeout: Optional[float] = None) -> Generation:
        """Greedy (temperature 0) or sampled generation, interventions applied at every step."""
        req = pb.GenerateRequest(model=model_spec(model), prompt=prompt, prompt_ids=[int(i) for i in prompt_ids],
                                 bos_policy=bos_policy(bos), max_new_tokens=max_new_tokens, temperature=temperature,
                                 top_k=top_k, top_p=top_p, seed=seed, interventions=list(interventions),
                                 ignore_eos=ignore_eos, intervene_on_prompt_only=intervene_on_prompt_only)
        r = self._c.stub.activations.Generate(req, timeout=timeout or self._c.timeout)
        return Generation(np.array(r.prompt_ids, np.int32), np.array(r.new_ids, np.int32), r.text, r.stop_reason)

    # --- extraction -----------------------------------------------------------------------------------------
    def extract(self, models: Mapping[ModelLike, Iterable[str]], *, texts=None, text_files=None, jsonl=None,
                text_field: str = "text", corpus: Optional[str] = None, max_documents: int = 0, context: int = 128,
                max_tokens: int = 0, bos=None, batch_size: int = 8, shard_tokens: int = 65536,
                slice_index: int = 0, slice_count: int = 0) -> Operation[pb.ExtractResult]:
        """Starts an extraction: ``models`` is {model: [hooks]}; several models make a paired extraction over one
        TokenSet (their tokenizers must agree). Documents come from exactly one of texts / text_files / jsonl /
        corpus and are cut into rows of ``context`` tokens. Identical requests reuse the stored sets.
        ``.wait()`` returns the ExtractResult (token_set, activation_sets in the order of ``models``)."""
        req = pb.ExtractRequest(corpus=corpus_spec(texts=texts, text_files=text_files, jsonl=jsonl, text_field=text_field,
                                                   corpus=corpus, max_documents=max_documents),
                                tokens=pb.TokenSetSpec(context_length=context, max_tokens=max_tokens, bos_policy=bos_policy(bos)),
                                batch_size=batch_size, shard_tokens=shard_tokens, slice_index=slice_index, slice_count=slice_count)
        for model, hooks in models.items():
            req.models.add(model=model_spec(model), hooks=[hooks] if isinstance(hooks, str) else list(hooks))
        return Operation(self._c, self._c.stub.activations.Extract(req, timeout=self._c.timeout), pb.ExtractResult)

    def read(self, activation_set: ArtifactLike, names: Optional[Iterable[str]] = None, shards: Iterable[int] = (), *,
             timeout: Optional[float] = None) -> dict[str, np.ndarray]:
        """An ActivationSet's shards (all, or ``shards``) concatenated per tensor: {hook: [n, d], "token_ids": [n],
        "special": [n], "row": [n], "position": [n]} (or just ``names``)."""
        req = pb.ReadActivationsRequest(activation_set=artifact_ref(activation_set, "activation-set"),
                                        names=list(names or []), shards=list(shards))
        return concatenate(self._c.stub.activations.ReadActivations(req, timeout=timeout))
