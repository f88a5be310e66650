"""A small synchronous client over the stitching gRPC contracts.

Tensors travel as numpy arrays. Element types map to DType as follows (always little-endian, C order):

    F32 '<f4'   F16 '<f2'   F64 '<f8'   I32 '<i4'   I64 '<i8'   U8 'u1'

numpy has no bfloat16, so BF16 is carried as raw uint16 bit patterns: uploads send a uint16 array as
BF16 only when asked (``bf16=True`` for every uint16 array, or a set of names), or any array whose
dtype is named "bfloat16" (ml_dtypes); reads return BF16 as a uint16 array unless ``bf16="float32"``
asks for an exact widening to float32.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Collection, Iterator, Mapping

import grpc
import numpy as np

from grpc_health.v1 import health_pb2, health_pb2_grpc
from stitching.activations.v1 import activations_pb2_grpc
from stitching.common.v1 import artifacts_pb2, artifacts_pb2_grpc
from stitching.common.v1 import operations_pb2, operations_pb2_grpc
from stitching.common.v1 import server_info_pb2, server_info_pb2_grpc
from stitching.common.v1 import tensor_pb2
from stitching.eval.v1 import eval_pb2_grpc
from stitching.sae.v1 import sae_pb2_grpc
from stitching.stitch.v1 import stitch_pb2_grpc

CHUNK_BYTES = 1 << 20  # data chunks we send; the server sends 4 MiB ones
MAX_MESSAGE_BYTES = 64 << 20

_DT = tensor_pb2.DType
_TO_NUMPY = {
    _DT.DTYPE_F32: np.dtype("<f4"), _DT.DTYPE_F16: np.dtype("<f2"), _DT.DTYPE_F64: np.dtype("<f8"),
    _DT.DTYPE_I32: np.dtype("<i4"), _DT.DTYPE_I64: np.dtype("<i8"), _DT.DTYPE_U8: np.dtype("u1"),
    _DT.DTYPE_BF16: np.dtype("<u2"),
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


def _state(state) -> int:
    if state is None:
        return 0
    if isinstance(state, str):
        s = state.upper()
        return operations_pb2.OperationState.Value(s if s.startswith("OPERATION_STATE_") else "OPERATION_STATE_" + s)
    return int(state)


class Client:
    """``Client("host:port")``; a context manager that closes its channel. RPC failures raise grpc.RpcError.

    The raw stubs are under ``client.stub`` (artifacts, operations, server_info, health, activations,
    stitch, sae, eval) for anything the helpers below do not cover.
    """

    def __init__(self, address: str = "127.0.0.1:50051", *, timeout: float | None = 30.0,
                 channel: grpc.Channel | None = None):
        self.address = address
        self.timeout = timeout
        self.channel = channel or grpc.insecure_channel(address, options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ])
        c = self.channel
        self.stub = SimpleNamespace(
            artifacts=artifacts_pb2_grpc.ArtifactsServiceStub(c),
            operations=operations_pb2_grpc.OperationsServiceStub(c),
            server_info=server_info_pb2_grpc.ServerInfoServiceStub(c),
            health=health_pb2_grpc.HealthStub(c),
            activations=activations_pb2_grpc.ActivationsServiceStub(c),
            stitch=stitch_pb2_grpc.StitchServiceStub(c),
            sae=sae_pb2_grpc.SaeServiceStub(c),
            eval=eval_pb2_grpc.EvalServiceStub(c),
        )

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


def state_name(op: operations_pb2.Operation) -> str:
    """"RUNNING", "SUCCEEDED", ... for an operation record."""
    return operations_pb2.OperationState.Name(op.state).removeprefix("OPERATION_STATE_")
