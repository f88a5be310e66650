"""A small synchronous client over the stitching gRPC contracts.

Tensors travel as numpy arrays. Element types map to DType as follows (always little-endian, C order):

    F32 '<f4'   F16 '<f2'   F64 '<f8'   I32 '<i4'   I64 '<i8'   U8 'u1'   BOOL '?'

numpy has no bfloat16, so BF16 is carried as raw uint16 bit patterns: uploads send a uint16 array as
BF16 only when asked (``bf16=True`` for every uint16 array, or a set of names), or any array whose
dtype is named "bfloat16" (ml_dtypes); reads return BF16 as a uint16 array unless ``bf16="float32"``
asks for an exact widening to float32.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Collection, Iterator, Mapping

import os

import grpc
import numpy as np

from grpc_health.v1 import health_pb2, health_pb2_grpc
from stitching.activations.v1 import activations_pb2, activations_pb2_grpc
from stitching.common.v1 import artifacts_pb2, artifacts_pb2_grpc
from stitching.common.v1 import operations_pb2, operations_pb2_grpc
from stitching.common.v1 import server_info_pb2, server_info_pb2_grpc
from stitching.common.v1 import tensor_pb2
from stitching.eval.v1 import eval_pb2, eval_pb2_grpc
from stitching.eval.v1 import experiment_pb2, experiment_pb2_grpc
from stitching.sae.v1 import sae_pb2_grpc
from stitching.stitch.v1 import stitch_pb2_grpc
from ._auth import Bearer

CHUNK_BYTES = 1 << 20  # data chunks we send; the server sends 4 MiB ones
MAX_MESSAGE_BYTES = 64 << 20

_DT = tensor_pb2.DType
_TO_NUMPY = {
    _DT.DTYPE_F32: np.dtype("<f4"), _DT.DTYPE_F16: np.dtype("<f2"), _DT.DTYPE_F64: np.dtype("<f8"),
    _DT.DTYPE_I32: np.dtype("<i4"), _DT.DTYPE_I64: np.dtype("<i8"), _DT.DTYPE_U8: np.dtype("u1"),
    _DT.DTYPE_BF16: np.dtype("<u2"), _DT.DTYPE_BOOL: np.dtype("?"),
}
_FROM_NUMPY = {dt.str: code for code, dt in _TO_NUMPY.items() if code != _DT.DTYPE_BF16}


class StitchingError(Exception):
    """A malformed tensor stream or an array the contracts cannot carry."""


@dataclass(frozen=True)
class Health:
    status: str                       # grpc.health.v1 verdict: SERVING, NOT_SERVING, UNKNOWN, ...
    checks: dict[str, str] = field(default_factory=dict)  # name -> HEALTHY / DEGRADED / UNHEALTHY
    info: server_info_pb2.ServerInfo | None = None

    @property
    def ok(self) -> bool:
        return self.status == "SERVING"


def _dtype_of(name: str, arr: np.ndarray, bf16: bool | Collection[str]) -> tuple[int, np.ndarray]:
    if arr.dtype.name == "bfloat16":
        return _DT.DTYPE_BF16, arr.view(np.uint16).astype("<u2", copy=False)
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 2 and (bf16 is True or (bf16 and name in bf16)):
        return _DT.DTYPE_BF16, arr.astype("<u2", copy=False)
    le = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
    code = _FROM_NUMPY.get(le.str)
    if code is None:
        hint = " (pass bf16=True to send uint16 bit patterns as BF16)" if arr.dtype.kind == "u" and arr.dtype.itemsize == 2 else ""
        raise StitchingError(f"tensor {name!r}: dtype {arr.dtype} has no DType{hint}")
    return code, arr.astype(le, copy=False)


def _chunks(tensors: Mapping[str, np.ndarray], bf16) -> Iterator[tensor_pb2.TensorChunk]:
    # dtypes are checked before the first message: an exception inside a request iterator reaches the
    # caller only as an opaque "Exception iterating requests!".
    typed = [(name, *_dtype_of(name, np.asarray(value), bf16)) for name, value in tensors.items()]
    return _chunk_stream(typed)


def _chunk_stream(typed) -> Iterator[tensor_pb2.TensorChunk]:
    for name, code, arr in typed:
        flat = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)
        yield tensor_pb2.TensorChunk(header=tensor_pb2.TensorHeader(
            name=name, dtype=code, shape=arr.shape, byte_length=flat.nbytes))
        for i in range(0, flat.nbytes, CHUNK_BYTES):
            yield tensor_pb2.TensorChunk(data=flat[i:i + CHUNK_BYTES].tobytes())


def _assemble(stream: Iterator[tensor_pb2.TensorChunk], bf16: str) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    header, buf, filled = None, None, 0

    def finish():
        if header is None:
            return
        if filled != header.byte_length:
            raise StitchingError(f"tensor {header.name!r}: got {filled} of {header.byte_length} bytes")
        arr = np.frombuffer(buf, dtype=_TO_NUMPY[header.dtype]).reshape(tuple(header.shape))
        if header.dtype == _DT.DTYPE_BF16 and bf16 == "float32":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[header.name] = arr

    for chunk in stream:
        if chunk.HasField("header"):
            finish()
            header, filled = chunk.header, 0
            if header.dtype not in _TO_NUMPY:
                raise StitchingError(f"tensor {header.name!r}: unknown dtype {header.dtype}")
            buf = bytearray(header.byte_length)
        elif header is None:
            raise StitchingError("data chunk before any header")
        else:
            n = len(chunk.data)
            if filled + n > header.byte_length:
                raise StitchingError(f"tensor {header.name!r}: more than {header.byte_length} bytes")
            buf[filled:filled + n] = chunk.data
            filled += n
    finish()
    return out


def tensor(name: str, value, *, bf16: bool = False) -> tensor_pb2.Tensor:
    """A numpy array (or anything np.asarray takes) as one Tensor message."""
    code, arr = _dtype_of(name, np.asarray(value), bf16)
    arr = np.ascontiguousarray(arr)
    return tensor_pb2.Tensor(name=name, dtype=code, shape=arr.shape, data=arr.tobytes())


def to_numpy(t: tensor_pb2.Tensor) -> np.ndarray:
    """A Tensor message as a numpy array (BF16 as uint16 bit patterns)."""
    return np.frombuffer(t.data, dtype=_TO_NUMPY[t.dtype]).reshape(tuple(t.shape))


_BOS = {None: 0, "model": 0, "always": 1, "never": 2}


def _model(model) -> activations_pb2.ModelSpec:
    if isinstance(model, activations_pb2.ModelSpec):
        return model
    return activations_pb2.ModelSpec(model=str(model))


class Interventions:
    """Builders for ForwardRequest / GenerateRequest interventions (see activations.proto)."""

    @staticmethod
    def replace(hook: str, value, positions=()) -> activations_pb2.Intervention:
        return activations_pb2.Intervention(hook=hook, positions=list(positions), replace=tensor("value", np.asarray(value, np.float32)))

    @staticmethod
    def add(hook: str, vector, scale: float = 1.0, positions=()) -> activations_pb2.Intervention:
        return activations_pb2.Intervention(hook=hook, positions=list(positions),
                                            add=activations_pb2.AddVector(vector=tensor("vector", np.asarray(vector, np.float32)), scale=scale))

    @staticmethod
    def clamp(hook: str, direction, value: float, positions=()) -> activations_pb2.Intervention:
        """h' = h + (value - <h, v>) v, v = direction / |direction| (steering)."""
        return activations_pb2.Intervention(hook=hook, positions=list(positions),
                                            clamp=activations_pb2.Clamp(direction=tensor("direction", np.asarray(direction, np.float32)), value=value))

    @staticmethod
    def affine(hook: str, maps, positions=()) -> activations_pb2.Intervention:
        """maps: [(P, b or None), ...] applied in order (h P + b)."""
        chain = activations_pb2.AffineChain(maps=[
            activations_pb2.Affine(matrix=tensor("P", np.asarray(p, np.float32)), bias=None if b is None else tensor("b", np.asarray(b, np.float32)))
            for p, b in maps])
        return activations_pb2.Intervention(hook=hook, positions=list(positions), affine=chain)

    @staticmethod
    def ablate(hook: str, mean=None, positions=()) -> activations_pb2.Intervention:
        return activations_pb2.Intervention(hook=hook, positions=list(positions),
                                            ablate=activations_pb2.Ablate(mean=None if mean is None else tensor("mean", np.asarray(mean, np.float32))))


def _state(state) -> int:
    if state is None:
        return 0
    if isinstance(state, str):
        s = state.upper()
        return operations_pb2.OperationState.Value(s if s.startswith("OPERATION_STATE_") else "OPERATION_STATE_" + s)
    return int(state)


class Client:
    """``Client("host:port")``; a context manager that closes its channel. RPC failures raise grpc.RpcError.

    ``token`` (default: the STITCHING_TOKEN environment variable) is sent as a bearer token on every call.

    The raw stubs are under ``client.stub`` (artifacts, operations, server_info, health, activations,
    stitch, sae, eval) for anything the helpers below do not cover.
    """

    def __init__(self, address: str = "127.0.0.1:50051", *, timeout: float | None = 30.0,
                 channel: grpc.Channel | None = None, token: str | None = None):
        self.address = address
        self.timeout = timeout
        self.channel = channel or grpc.insecure_channel(address, options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ])
        token = token if token is not None else os.environ.get("STITCHING_TOKEN")
        c = grpc.intercept_channel(self.channel, Bearer(token)) if token else self.channel
        self.stub = SimpleNamespace(
            artifacts=artifacts_pb2_grpc.ArtifactsServiceStub(c),
            operations=operations_pb2_grpc.OperationsServiceStub(c),
            server_info=server_info_pb2_grpc.ServerInfoServiceStub(c),
            health=health_pb2_grpc.HealthStub(c),
            activations=activations_pb2_grpc.ActivationsServiceStub(c),
            stitch=stitch_pb2_grpc.StitchServiceStub(c),
            sae=sae_pb2_grpc.SaeServiceStub(c),
            eval=eval_pb2_grpc.EvalServiceStub(c),
            experiments=experiment_pb2_grpc.ExperimentsServiceStub(c),
        )
        self.experiments = Experiments(self)

    def evaluate_sae(self, model, sae: str, token_ids, *, hook: str = "", batch_size: int = 0,
                     timeout: float | None = None) -> eval_pb2.SaeEvaluation:
        """An SAE (artifact id) on held-out token rows [rows, T]: l0, mse, fvu, ce_clean, ce_spliced, loss_recovered, kl, ..."""
        return self.stub.eval.EvaluateSae(eval_pb2.EvaluateSaeRequest(
            model=_model(model), sae=artifacts_pb2.ArtifactRef(kind="sae", id=sae), hook=hook,
            token_ids=tensor("token_ids", np.asarray(token_ids, dtype=np.int32)), batch_size=batch_size), timeout=timeout or self.timeout)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- health -------------------------------------------------------------------------------
    def health(self, service: str = "") -> Health:
        """The overall grpc.health.v1 verdict (or one service's), with the named checks from ServerInfoService
        (empty, and ``info`` None, on a host that does not serve it)."""
        r = self.stub.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=self.timeout)
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)
        try:
            info = self.server_info()
        except grpc.RpcError as e:  # a host without ServerInfoService: the verdict alone
            if e.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
            return Health(status)
        checks = {c.name: server_info_pb2.CheckStatus.Name(c.status).removeprefix("CHECK_STATUS_") for c in info.checks}
        return Health(status, checks, info)

    def server_info(self) -> server_info_pb2.ServerInfo:
        return self.stub.server_info.GetServerInfo(server_info_pb2.GetServerInfoRequest(), timeout=self.timeout)

    # --- artifacts ----------------------------------------------------------------------------
    def artifacts(self, kind: str | None = None) -> list[artifacts_pb2.ArtifactManifest]:
        return list(self.stub.artifacts.ListArtifacts(artifacts_pb2.ListArtifactsRequest(kind=kind or ""), timeout=self.timeout).artifacts)

    def artifact(self, kind: str, id: str) -> artifacts_pb2.ArtifactManifest:
        return self.stub.artifacts.GetArtifact(artifacts_pb2.GetArtifactRequest(ref=artifacts_pb2.ArtifactRef(kind=kind, id=id)), timeout=self.timeout)

    def upload_tensors(self, kind: str, id: str, tensors: Mapping[str, np.ndarray], file: str | None = None,
                       metadata: Mapping[str, str] | None = None, *, bf16: bool | Collection[str] = False,
                       timeout: float | None = None) -> artifacts_pb2.ArtifactManifest:
        """Uploads ``tensors`` as one safetensors file of a new artifact; returns its manifest."""
        target = artifacts_pb2.UploadTarget(ref=artifacts_pb2.ArtifactRef(kind=kind, id=id), file=file or "", metadata=dict(metadata or {}))

        chunks = _chunks(tensors, bf16)

        def requests():
            yield artifacts_pb2.UploadTensorsRequest(target=target)
            for chunk in chunks:
                yield artifacts_pb2.UploadTensorsRequest(chunk=chunk)

        return self.stub.artifacts.UploadTensors(requests(), timeout=timeout)

    def read_tensors(self, kind: str, id: str, names: Collection[str] | None = None, file: str | None = None, *,
                     bf16: str = "uint16", timeout: float | None = None) -> dict[str, np.ndarray]:
        """Reads tensors (all, or ``names``) of one file of an artifact, in file order.

        BF16 tensors come back as uint16 bit patterns, or widened exactly with ``bf16="float32"``.
        """
        if bf16 not in ("uint16", "float32"):
            raise ValueError('bf16 must be "uint16" or "float32"')
        req = artifacts_pb2.ReadTensorsRequest(ref=artifacts_pb2.ArtifactRef(kind=kind, id=id), file=file or "", names=list(names or []))
        return _assemble(self.stub.artifacts.ReadTensors(req, timeout=timeout), bf16)

    # --- operations ---------------------------------------------------------------------------
    def operations(self, kind: str | None = None, state: str | int | None = None, limit: int = 0) -> list[operations_pb2.Operation]:
        """Operations, newest first; ``state`` is a name like "running" or an OperationState value."""
        req = operations_pb2.ListOperationsRequest(kind=kind or "", state=_state(state), limit=limit)
        return list(self.stub.operations.ListOperations(req, timeout=self.timeout).operations)

    def operation(self, id: str) -> operations_pb2.Operation:
        return self.stub.operations.GetOperation(operations_pb2.GetOperationRequest(id=id), timeout=self.timeout)

    def watch(self, id: str) -> Iterator[operations_pb2.Operation]:
        """Yields the record on every change; the last one is final."""
        yield from self.stub.operations.WatchOperation(operations_pb2.WatchOperationRequest(id=id))

    def wait(self, id: str) -> operations_pb2.Operation:
        """Blocks until the operation ends; returns its final record."""
        op = None
        for op in self.watch(id):
            pass
        return op if op is not None else self.operation(id)

    def cancel(self, id: str) -> operations_pb2.Operation:
        return self.stub.operations.CancelOperation(operations_pb2.CancelOperationRequest(id=id), timeout=self.timeout)

    def read_file(self, kind: str, id: str, file: str) -> bytes:
        """The bytes of one file of an artifact (verified by the server against the manifest's sha256, and here again)."""
        import hashlib
        parts, digest = [], None
        for chunk in self.stub.artifacts.ReadFile(artifacts_pb2.ReadFileRequest(ref=artifacts_pb2.ArtifactRef(kind=kind, id=id), file=file), timeout=self.timeout):
            digest = digest or chunk.sha256
            parts.append(chunk.data)
        data = b"".join(parts)
        if digest and hashlib.sha256(data).hexdigest() != digest:
            raise StitchingError(f"{kind}/{id}/{file}: received bytes do not match the manifest's sha256")
        return data


    # --- activations: models, tokenizers, forward, generate, extract ---------------------------
    def models(self) -> list[activations_pb2.ModelInfo]:
        return list(self.stub.activations.ListModels(activations_pb2.ListModelsRequest(), timeout=self.timeout).models)

    def describe(self, model) -> activations_pb2.ModelInfo:
        return self.stub.activations.DescribeModel(activations_pb2.DescribeModelRequest(model=_model(model)), timeout=self.timeout)

    def load(self, model, *, dtype: str = "", allow_download: bool = False, timeout: float | None = None) -> activations_pb2.ModelInfo:
        spec = _model(model)
        if dtype:
            spec.dtype = dtype
        return self.stub.activations.LoadModel(activations_pb2.LoadModelRequest(model=spec, allow_download=allow_download), timeout=timeout)

    def tokenize(self, model, texts, bos: str | None = None) -> list[list[int]]:
        """Token ids per text ("model", "always" or "never" BOS policy)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        r = self.stub.activations.Tokenize(activations_pb2.TokenizeRequest(model=_model(model), texts=texts, bos_policy=_BOS[bos]), timeout=self.timeout)
        return [list(t.ids) for t in r.texts]

    def detokenize(self, model, ids, skip_special_tokens: bool = False) -> str:
        return self.stub.activations.Detokenize(activations_pb2.DetokenizeRequest(
            model=_model(model), ids=[int(i) for i in ids], skip_special_tokens=skip_special_tokens), timeout=self.timeout).text

    def forward(self, model, token_ids=None, *, text: str | None = None, bos: str | None = None, capture=(),
                interventions=(), start_layer: int = 0, start_residual=None, logits: bool = False, loss: bool = False,
                kl: bool = False, top_k: int = 0, timeout: float | None = None) -> dict[str, np.ndarray | float]:
        """One forward pass. Returns {hook: [B, T, d], "logits", "loss", "mean_loss", "kl", "mean_kl", "top_k_ids", ...}
        with the entries that were asked for."""
        req = activations_pb2.ForwardRequest(model=_model(model), capture=list(capture), interventions=list(interventions),
                                             start_layer=start_layer, return_logits=logits, return_loss=loss, return_kl=kl,
                                             top_k=top_k, bos_policy=_BOS[bos], text=text or "")
        if token_ids is not None:
            req.token_ids.CopyFrom(tensor("token_ids", np.asarray(token_ids, np.int64)))
        if start_residual is not None:
            req.start_residual.CopyFrom(tensor("start_residual", np.asarray(start_residual, np.float32)))
        r = self.stub.activations.Forward(req, timeout=timeout or self.timeout)
        out: dict[str, np.ndarray | float] = {t.name: to_numpy(t) for t in r.captured}
        for name in ("logits", "loss", "kl", "top_k_ids", "top_k_logits", "token_ids"):
            if r.HasField(name):
                out[name] = to_numpy(getattr(r, name))
        if loss:
            out["mean_loss"] = r.mean_loss
        if kl:
            out["mean_kl"] = r.mean_kl
            out["clean_mean_loss"] = r.clean_mean_loss
        return out

    def generate(self, model, prompt: str = "", *, prompt_ids=(), max_new_tokens: int = 32, temperature: float = 0.0,
                 top_k: int = 0, top_p: float = 0.0, seed: int = 0, interventions=(), ignore_eos: bool = False,
                 timeout: float | None = None) -> activations_pb2.GenerateResponse:
        req = activations_pb2.GenerateRequest(model=_model(model), prompt=prompt, prompt_ids=list(prompt_ids),
                                              max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                                              top_p=top_p, seed=seed, interventions=list(interventions), ignore_eos=ignore_eos)
        return self.stub.activations.Generate(req, timeout=timeout)

    def extract(self, models, *, texts=None, text_files=None, jsonl=None, text_field: str = "text", corpus: str | None = None,
                context: int = 128, max_tokens: int = 0, bos: str | None = None, batch_size: int = 8,
                shard_tokens: int = 65536, wait: bool = True):
        """Starts an extraction; ``models`` is {model: [hooks]} (several models = paired extraction over one
        TokenSet). With wait=True blocks and returns the ExtractResult, else the Operation."""
        sources = [x is not None for x in (texts, text_files, jsonl, corpus)]
        if sum(sources) != 1:
            raise ValueError("give exactly one of texts, text_files, jsonl, corpus")
        c = activations_pb2.CorpusSpec()
        if texts is not None:
            c.texts.texts.extend(texts)
        elif text_files is not None:
            c.text_files.paths.extend(text_files)
        elif jsonl is not None:
            c.jsonl.paths.extend(jsonl)
            c.jsonl.text_field = text_field
        else:
            c.named = corpus
        req = activations_pb2.ExtractRequest(corpus=c, batch_size=batch_size, shard_tokens=shard_tokens,
                                             tokens=activations_pb2.TokenSetSpec(context_length=context, max_tokens=max_tokens, bos_policy=_BOS[bos]))
        for model, hooks in models.items():
            req.models.add(model=_model(model), hooks=list(hooks))
        op = self.stub.activations.Extract(req, timeout=self.timeout)
        if not wait:
            return op
        final = self.wait(op.id)
        if state_name(final) != "SUCCEEDED":
            raise StitchingError(f"extraction {op.id} ended {state_name(final)}: {final.error.code} {final.error.message}")
        result = activations_pb2.ExtractResult()
        final.result.Unpack(result)
        return result

    def read_activations(self, activation_set, names: Collection[str] | None = None, shards=()) -> dict[str, np.ndarray]:
        """All shards (or ``shards``) of an ActivationSet, concatenated per tensor: {hook: [n, d], "token_ids": [n], ...}."""
        ref = activation_set if isinstance(activation_set, artifacts_pb2.ArtifactRef) else artifacts_pb2.ArtifactRef(kind="activation-set", id=activation_set)
        stream = self.stub.activations.ReadActivations(activations_pb2.ReadActivationsRequest(
            activation_set=ref, names=list(names or []), shards=list(shards)))
        parts: dict[str, list[np.ndarray]] = {}
        header, buf, filled = None, None, 0
        for chunk in stream:  # one tensor per header; shards repeat the names
            if chunk.HasField("header"):
                header, buf, filled = chunk.header, bytearray(chunk.header.byte_length), 0
            else:
                buf[filled:filled + len(chunk.data)] = chunk.data
                filled += len(chunk.data)
            if header is not None and filled == header.byte_length:
                arr = np.frombuffer(bytes(buf), dtype=_TO_NUMPY[header.dtype]).reshape(tuple(header.shape))
                parts.setdefault(header.name, []).append(arr)
                header = None
        return {k: np.concatenate(v) for k, v in parts.items()}


@dataclass
class ExperimentRun:
    """A finished experiment: its operation, its result (stages, FLOP ledger), and its report parsed."""
    operation: operations_pb2.Operation
    result: experiment_pb2.ExperimentResult
    report: dict
    markdown: str


class Experiments:
    """``client.experiments``: the paper's method on a model pair as one server operation (docs/experiments.md).

    A spec is an ``ExperimentSpec`` message, a dict in its JSON form (snake_case keys), or a path to a .json file
    (or .yaml when PyYAML is installed).
    """

    def __init__(self, client: "Client"):
        self._c = client

    @staticmethod
    def spec(spec) -> experiment_pb2.ExperimentSpec:
        from google.protobuf import json_format
        import json
        if isinstance(spec, experiment_pb2.ExperimentSpec):
            return spec
        if isinstance(spec, (str, os.PathLike)):
            text = open(spec, encoding="utf-8").read()
            if str(spec).endswith((".yaml", ".yml")):
                import yaml  # PyYAML (Debian: python3-yaml)
                spec = yaml.safe_load(text)
            else:
                spec = json.loads(text)
            spec = spec.get("experiment", spec)
        return json_format.ParseDict(spec, experiment_pb2.ExperimentSpec())

    def plan(self, spec) -> experiment_pb2.ExperimentPlan:
        """The dry run: models found or missing, layers, FLOPs, activation-cache bytes, peak memory, problems."""
        return self._c.stub.experiments.PlanExperiment(experiment_pb2.RunExperimentRequest(spec=self.spec(spec)), timeout=self._c.timeout)

    def start(self, spec) -> operations_pb2.Operation:
        """Starts (or joins the running twin of) an experiment; returns its operation at once."""
        return self._c.stub.experiments.RunExperiment(experiment_pb2.RunExperimentRequest(spec=self.spec(spec)), timeout=self._c.timeout)

    def run(self, spec, *, progress=None) -> ExperimentRun:
        """Runs an experiment to its end. ``progress``: a callable given every operation update, or True to print a
        line per stage to stderr. Raises StitchingError when it fails."""
        import json
        import sys
        op = self.start(spec)
        last_stage = None
        for op in self._c.watch(op.id):
            if callable(progress):
                progress(op)
            elif progress and op.progress.message and op.progress.message != last_stage:
                last_stage = op.progress.message
                print(f"{op.progress.message} ({op.progress.phase})", file=sys.stderr)
        if op.state != operations_pb2.OPERATION_STATE_SUCCEEDED:
            raise StitchingError(f"experiment {op.id} ended {state_name(op)}: {op.error.code} {op.error.message}")
        result = experiment_pb2.ExperimentResult()
        op.result.Unpack(result)
        report = json.loads(self._c.read_file(result.report.kind, result.report.id, "report.json"))
        markdown = self._c.read_file(result.report.kind, result.report.id, "report.md").decode("utf-8")
        return ExperimentRun(op, result, report, markdown)


def state_name(op: operations_pb2.Operation) -> str:
    """"RUNNING", "SUCCEEDED", ... for an operation record."""
    return operations_pb2.OperationState.Name(op.state).removeprefix("OPERATION_STATE_")
