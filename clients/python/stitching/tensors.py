"""numpy arrays <-> the contracts' tensors (stitching/common/v1/tensor.proto).

Element types map to DType as follows (always little-endian, C order):

    F32 '<f4'   F16 '<f2'   F64 '<f8'   I32 '<i4'   I64 '<i8'   U8 'u1'   BOOL '?'

numpy has no bfloat16, so BF16 is carried as raw uint16 bit patterns: uploads send a uint16 array as BF16 only
when asked (``bf16=True`` for every uint16 array, or a set of names), or any array whose dtype is named
"bfloat16" (ml_dtypes); reads return BF16 as a uint16 array unless ``bf16="float32"`` asks for an exact widening.
"""
from __future__ import annotations

from typing import Collection, Iterable, Iterator, Mapping, Union

import numpy as np

from .common.v1 import tensor_pb2
from .errors import StitchingError

CHUNK_BYTES = 1 << 20  # data chunks we send; the server sends 4 MiB ones

Bf16 = Union[bool, Collection[str]]

_DT = tensor_pb2.DType
_TO_NUMPY = {
    _DT.DTYPE_F32: np.dtype("<f4"), _DT.DTYPE_F16: np.dtype("<f2"), _DT.DTYPE_F64: np.dtype("<f8"),
    _DT.DTYPE_I32: np.dtype("<i4"), _DT.DTYPE_I64: np.dtype("<i8"), _DT.DTYPE_U8: np.dtype("u1"),
    _DT.DTYPE_BF16: np.dtype("<u2"), _DT.DTYPE_BOOL: np.dtype("?"),
}
_FROM_NUMPY = {dt.str: code for code, dt in _TO_NUMPY.items() if code != _DT.DTYPE_BF16}


def _dtype_of(name: str, arr: np.ndarray, bf16: Bf16) -> tuple[int, np.ndarray]:
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


def tensor(name: str, value, *, bf16: bool = False) -> tensor_pb2.Tensor:
    """A numpy array (or anything np.asarray takes) as one Tensor message."""
    code, arr = _dtype_of(name, np.asarray(value), bf16)
    # shape from arr itself: np.ascontiguousarray would make a 0-d array 1-d
    return tensor_pb2.Tensor(name=name, dtype=code, shape=arr.shape, data=arr.tobytes(order="C"))


def float32(name: str, value) -> tensor_pb2.Tensor:
    """Activations, directions, matrices: float32 whatever the input's float type."""
    return tensor(name, np.asarray(value, dtype=np.float32))


def int64(name: str, value) -> tensor_pb2.Tensor:
    """Token ids as I64."""
    return tensor(name, np.asarray(value, dtype=np.int64))


def to_numpy(t: tensor_pb2.Tensor) -> np.ndarray:
    """A Tensor message as a numpy array (BF16 as uint16 bit patterns)."""
    if t.dtype not in _TO_NUMPY:
        raise StitchingError(f"tensor {t.name!r}: unknown dtype {t.dtype}")
    return np.frombuffer(t.data, dtype=_TO_NUMPY[t.dtype]).reshape(tuple(t.shape))


def chunks(tensors: Mapping[str, np.ndarray], bf16: Bf16 = False) -> Iterator[tensor_pb2.TensorChunk]:
    """A TensorChunk stream (header, then 1 MiB data chunks, per tensor). Dtypes are checked here, before the first
    message: an exception inside a request iterator reaches the caller only as "Exception iterating requests!"."""
    typed = [(name, *_dtype_of(name, np.asarray(value), bf16)) for name, value in tensors.items()]
    return _chunk_stream(typed)


def _chunk_stream(typed) -> Iterator[tensor_pb2.TensorChunk]:
    for name, code, arr in typed:
        flat = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)
        yield tensor_pb2.TensorChunk(header=tensor_pb2.TensorHeader(name=name, dtype=code, shape=arr.shape, byte_length=flat.nbytes))
        for i in range(0, flat.nbytes, CHUNK_BYTES):
            yield tensor_pb2.TensorChunk(data=flat[i:i + CHUNK_BYTES].tobytes())


def read_stream(stream: Iterable[tensor_pb2.TensorChunk], bf16: str = "uint16") -> Iterator[tuple[str, np.ndarray]]:
    """(name, array) per tensor of a TensorChunk stream, checking every byte count."""
    if bf16 not in ("uint16", "float32"):
        raise ValueError('bf16 must be "uint16" or "float32"')
    header, buf, filled = None, None, 0

    def finish():
        if filled != header.byte_length:
            raise StitchingError(f"tensor {header.name!r}: got {filled} of {header.byte_length} bytes")
        arr = np.frombuffer(buf, dtype=_TO_NUMPY[header.dtype]).reshape(tuple(header.shape))
        if header.dtype == _DT.DTYPE_BF16 and bf16 == "float32":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        return header.name, arr

    for chunk in stream:
        if chunk.HasField("header"):
            if header is not None:
                yield finish()
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
    if header is not None:
        yield finish()


def assemble(stream: Iterable[tensor_pb2.TensorChunk], bf16: str = "uint16") -> dict[str, np.ndarray]:
    """A TensorChunk stream of distinct names as {name: array}, in stream order."""
    return dict(read_stream(stream, bf16))


def concatenate(stream: Iterable[tensor_pb2.TensorChunk]) -> dict[str, np.ndarray]:
    """A stream that repeats names (one block per shard) as {name: blocks concatenated along axis 0}."""
    parts: dict[str, list[np.ndarray]] = {}
    for name, arr in read_stream(stream):
        parts.setdefault(name, []).append(arr)
    return {k: v[0] if len(v) == 1 else np.concatenate(v) for k, v in parts.items()}
