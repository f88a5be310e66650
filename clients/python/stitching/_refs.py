"""What callers may pass where the contracts want an ArtifactRef, a ModelSpec or an enum, and the conversions."""
from __future__ import annotations

from typing import Any, Union

from google.protobuf.message import Message

from .activations.v1 import activations_pb2
from .common.v1 import artifacts_pb2

ArtifactLike = Union[str, artifacts_pb2.ArtifactRef, Message]
"""An artifact id (of the kind the call expects), "kind/id", an ArtifactRef, or a message that names one:
an ArtifactManifest, SaeInfo, TrainResult, FitResult, ..."""

ModelLike = Union[str, activations_pb2.ModelSpec, activations_pb2.ModelInfo]
"""A model-store name, a folder on the server, a hub id "org/name", a ModelSpec or a ModelInfo."""

_BOS = {None: 0, "model": 0, "default": 0, "always": 1, "never": 2, True: 1, False: 2}


def artifact_ref(value: ArtifactLike, kind: str) -> artifacts_pb2.ArtifactRef:
    """An ArtifactRef of ``kind`` (unless the value names its own kind)."""
    if isinstance(value, artifacts_pb2.ArtifactRef):
        return value
    if isinstance(value, str):
        if "/" in value:  # ids are single path components, so "kind/id" is unambiguous
            k, _, i = value.partition("/")
            return artifacts_pb2.ArtifactRef(kind=k, id=i)
        return artifacts_pb2.ArtifactRef(kind=kind, id=value)
    if isinstance(value, Message):
        for field in ("ref", "stitch", "sae", "report"):  # ArtifactManifest / SaeInfo, FitResult, TrainResult, ExperimentResult
            if field in value.DESCRIPTOR.fields_by_name and value.HasField(field):
                return artifact_ref(getattr(value, field), kind)
    raise TypeError(f"cannot name a {kind!r} artifact with {type(value).__name__} {value!r}; give its id or an ArtifactRef")


def model_spec(model: ModelLike, dtype: str = "", device: str = "") -> activations_pb2.ModelSpec:
    if isinstance(model, activations_pb2.ModelSpec):
        spec = activations_pb2.ModelSpec()
        spec.CopyFrom(model)
    elif isinstance(model, activations_pb2.ModelInfo):
        spec = activations_pb2.ModelSpec(model=model.name)
    else:
        spec = activations_pb2.ModelSpec(model=str(model))
    if dtype:
        spec.dtype = dtype
    if device:
        spec.device = device
    return spec


def bos_policy(bos: Any) -> int:
    """BosPolicy from None / "model" (the tokenizer's default), "always", "never", True, False or the enum value."""
    if isinstance(bos, int) and not isinstance(bos, bool):
        return bos
    try:
        return _BOS[bos.lower() if isinstance(bos, str) else bos]
    except KeyError:
        raise ValueError(f"bos must be None, 'model', 'always' or 'never', not {bos!r}") from None


def enum_value(enum, value: Any, prefix: str) -> int:
    """An enum value from its short name ("up" for DIRECTION_UP), full name or number."""
    if isinstance(value, int):
        return value
    name = str(value).upper()
    try:
        return enum.Value(name if name.startswith(prefix) else prefix + name)
    except ValueError:
        names = [n[len(prefix):].lower() for n in enum.keys() if not n.endswith("UNSPECIFIED")]
        raise ValueError(f"{value!r} is not one of {', '.join(names)}") from None


def set_fields(message: Message, fields: dict[str, Any], what: str) -> None:
    """Sets scalar / repeated / wrapper (BoolValue, Int32Value) fields by name; an unknown name raises TypeError."""
    for name, value in fields.items():
        if value is None:
            continue
        field = message.DESCRIPTOR.fields_by_name.get(name)
        if field is None:
            raise TypeError(f"{what} has no field {name!r}")
        if field.label == field.LABEL_REPEATED:
            getattr(message, name).extend(value)
        elif field.message_type is not None and field.message_type.full_name.startswith("google.protobuf.") \
                and field.message_type.full_name.endswith("Value"):
            getattr(message, name).value = value
        elif field.message_type is not None:
            getattr(message, name).CopyFrom(value)
        else:
            setattr(message, name, value)
