"""Exceptions: every one this package raises is a StitchingError.

A failed call raises an RpcError subclass named after its status code (NotFound, InvalidArgument, ...). It is
also a ``grpc.RpcError`` with ``code()`` and ``details()``, so code written against bare grpc keeps working. The
server (libs/Stitching.Hosting/ErrorInterceptor.cs) attaches a google.rpc.BadRequest to INVALID_ARGUMENT
statuses naming the request field at fault; it arrives here as ``field`` and ``violations``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import grpc

from ._rpc import status_pb2

_DETAILS_KEY = "grpc-status-details-bin"
_BAD_REQUEST = "google.rpc.BadRequest"


class StitchingError(Exception):
    """Base of this package's errors; raised itself for data the contracts cannot carry (before anything is sent)."""


@dataclass(frozen=True)
class FieldViolation:
    """One request field the server rejected: its path (e.g. "sae.d_sae") and the sentence saying why and the fix."""
    field: str
    description: str


class RpcError(StitchingError, grpc.RpcError):
    """A call that ended with a non-OK status.

    ``status`` is the grpc.StatusCode, ``message`` the server's sentence, ``violations`` the fields at fault
    (INVALID_ARGUMENT), ``field`` the first of them (or None), ``method`` the RPC.
    """

    status: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, status: grpc.StatusCode, message: str, violations: Sequence[FieldViolation] = (), *,
                 method: str = "", trailing_metadata: Sequence[tuple[str, Any]] = ()):
        self.status = status
        self.message = message
        self.violations = tuple(violations)
        self.method = method
        self._trailing = tuple(trailing_metadata)
        super().__init__(str(self))

    @property
    def field(self) -> str | None:
        return self.violations[0].field if self.violations else None

    # grpc.RpcError / grpc.Call compatibility
    def code(self) -> grpc.StatusCode:
        return self.status

    def details(self) -> str:
        return self.message

    def trailing_metadata(self) -> tuple:
        return self._trailing

    def __str__(self) -> str:
        where = f" (field {', '.join(v.field for v in self.violations)})" if self.violations else ""
        return f"{self.status.name}{where}: {self.message}"


class Cancelled(RpcError): status = grpc.StatusCode.CANCELLED
class Unknown(RpcError): status = grpc.StatusCode.UNKNOWN
class InvalidArgument(RpcError): status = grpc.StatusCode.INVALID_ARGUMENT
class DeadlineExceeded(RpcError): status = grpc.StatusCode.DEADLINE_EXCEEDED
class NotFound(RpcError): status = grpc.StatusCode.NOT_FOUND
class AlreadyExists(RpcError): status = grpc.StatusCode.ALREADY_EXISTS
class PermissionDenied(RpcError): status = grpc.StatusCode.PERMISSION_DENIED
class ResourceExhausted(RpcError): status = grpc.StatusCode.RESOURCE_EXHAUSTED
class FailedPrecondition(RpcError): status = grpc.StatusCode.FAILED_PRECONDITION
class Aborted(RpcError): status = grpc.StatusCode.ABORTED
class OutOfRange(RpcError): status = grpc.StatusCode.OUT_OF_RANGE
class Unimplemented(RpcError): status = grpc.StatusCode.UNIMPLEMENTED
class Internal(RpcError): status = grpc.StatusCode.INTERNAL
class Unavailable(RpcError): status = grpc.StatusCode.UNAVAILABLE
class DataLoss(RpcError): status = grpc.StatusCode.DATA_LOSS
class Unauthenticated(RpcError): status = grpc.StatusCode.UNAUTHENTICATED


_BY_CODE = {cls.status: cls for cls in RpcError.__subclasses__()}


def error_for(status: grpc.StatusCode, message: str, violations: Sequence[FieldViolation] = (), **kw) -> RpcError:
    """The RpcError subclass for ``status``."""
    return _BY_CODE.get(status, RpcError)(status, message, violations, **kw)


def from_grpc(e: grpc.RpcError, method: str = "") -> RpcError:
    """A grpc.RpcError (what grpcio raises) as this package's error, field violations decoded from the trailers."""
    if isinstance(e, RpcError):
        return e
    code = e.code() if callable(getattr(e, "code", None)) else grpc.StatusCode.UNKNOWN
    message = e.details() if callable(getattr(e, "details", None)) else str(e)
    trailers = tuple(e.trailing_metadata() or ()) if callable(getattr(e, "trailing_metadata", None)) else ()
    return error_for(code, message or "", field_violations(trailers), method=method, trailing_metadata=trailers)


def field_violations(trailing_metadata: Sequence[tuple[str, Any]]) -> list[FieldViolation]:
    """The google.rpc.BadRequest field violations in a grpc-status-details-bin trailer (none when absent)."""
    out = []
    for key, value in trailing_metadata:
        if key != _DETAILS_KEY:
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.type_url.rsplit("/", 1)[-1] == _BAD_REQUEST:
                bad = status_pb2.BadRequest.FromString(detail.value)
                out += [FieldViolation(v.field, v.description) for v in bad.field_violations]
    return out


class OperationFailed(StitchingError):
    """An operation that ended FAILED (or CANCELLED: see OperationCancelled).

    ``operation`` is the final stitching.Operation; ``status`` the grpc.StatusCode the server recorded;
    ``message`` its sentence.
    """

    def __init__(self, operation, status: grpc.StatusCode, message: str):
        self.operation = operation
        self.status = status
        self.message = message
        super().__init__(f"operation {operation.id} ({operation.kind}) ended {operation.state}: {status.name}: {message}")

    def code(self) -> grpc.StatusCode:
        return self.status


class OperationCancelled(OperationFailed):
    """An operation that ended CANCELLED."""


def status_code(name: str) -> grpc.StatusCode:
    """grpc.StatusCode by name ("INVALID_ARGUMENT"); UNKNOWN for a name grpc does not know."""
    return grpc.StatusCode.__members__.get(name, grpc.StatusCode.UNKNOWN)
