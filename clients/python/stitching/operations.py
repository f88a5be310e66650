"""Long-running work (extract, fit, train, probes, experiments...) as Operation objects.

Starting a job returns at once with an Operation: ``wait()`` blocks and returns the unpacked result (an
ExtractResult, FitResult, TrainResult, ...), ``watch()`` does the same while showing progress, ``cancel()`` asks
the server to stop it, ``result`` is the result of a finished one. A failed operation raises OperationFailed
(OperationCancelled when it was cancelled) carrying the status code the server recorded.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Generic, Iterator, Optional, Type, TypeVar, Union

from google.protobuf import any_pb2
from google.protobuf.message import Message

from . import _progress
from ._refs import enum_value
from .activations.v1 import activations_pb2
from .common.v1 import operations_pb2
from .errors import DeadlineExceeded, OperationCancelled, OperationFailed, StitchingError, Unavailable, status_code
from .eval.v1 import eval_pb2, experiment_pb2
from .sae.v1 import sae_pb2
from .stitch.v1 import stitch_pb2

if TYPE_CHECKING:
    from .client import Client

R = TypeVar("R", bound=Message)

_FINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}
_WATCH_RECONNECTS = 5
# Result messages by type name, for operations fetched by id (a sub-API that starts one knows its type anyway).
RESULT_TYPES: dict[str, Type[Message]] = {cls.DESCRIPTOR.full_name: cls for cls in (
    activations_pb2.ExtractResult, stitch_pb2.FitResult, sae_pb2.TrainResult, eval_pb2.ProbeEvaluation,
    eval_pb2.SteeringEvaluation, eval_pb2.FeatureEvaluation, experiment_pb2.ExperimentResult)}


def state_name(op: Union["Operation", operations_pb2.Operation]) -> str:
    """"RUNNING", "SUCCEEDED", ... for an Operation or an operation record."""
    record = op.record if isinstance(op, Operation) else op
    return operations_pb2.OperationState.Name(record.state).removeprefix("OPERATION_STATE_")


def unpack(packed: any_pb2.Any, result_type: Optional[Type[Message]] = None) -> Message:
    """A packed result as its message (``result_type``, else found by its type URL); the Any itself when unknown."""
    cls = result_type or RESULT_TYPES.get(packed.type_url.rsplit("/", 1)[-1])
    if cls is None:
        return packed
    out = cls()
    if not packed.Unpack(out):
        raise StitchingError(f"result is a {packed.type_url}, not a {cls.DESCRIPTOR.full_name}")
    return out


class Operation(Generic[R]):
    """A handle on one operation: its latest record (``record``), refreshed by every call that reads it."""

    def __init__(self, client: "Client", record: operations_pb2.Operation, result_type: Optional[Type[R]] = None):
        self._client = client
        self.record = record
        self._result_type = result_type

    # --- the record -------------------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.record.id

    @property
    def kind(self) -> str:
        return self.record.kind

    @property
    def state(self) -> str:
        """PENDING, RUNNING, CANCELLING, SUCCEEDED, FAILED or CANCELLED."""
        return state_name(self.record)

    @property
    def progress(self) -> operations_pb2.OperationProgress:
        return self.record.progress

    @property
    def done(self) -> bool:
        return self.state in _FINAL

    @property
    def outputs(self) -> list:
        return list(self.record.outputs)

    @property
    def result(self) -> R:
        """The unpacked result of a SUCCEEDED operation; raises OperationFailed for a failed or cancelled one and
        StitchingError for one still running (call wait() first)."""
        self._raise_unless_succeeded()
        return unpack(self.record.result, self._result_type)  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"<Operation {self.id} {self.kind} {self.state} step {self.progress.step}/{self.progress.total_steps}>"

    # --- actions ----------------------------------------------------------------------------------------------
    def refresh(self) -> "Operation[R]":
        self.record = self._client.stub.operations.GetOperation(operations_pb2.GetOperationRequest(id=self.id), timeout=self._client.timeout)
        return self

    def updates(self, timeout: Optional[float] = None) -> Iterator["Operation[R]"]:
        """Yields this object on every change of the record, the last time when it is final. A dropped stream
        (UNAVAILABLE: the server restarting) is resumed; ``timeout`` bounds the whole wait (DeadlineExceeded)."""
        if self.done:  # final already: one snapshot, so that progress still reports it
            yield self
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        reconnects = 0
        while not self.done:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise DeadlineExceeded(DeadlineExceeded.status, f"operation {self.id} is still {self.state} after {timeout} s")
            try:
                for record in self._client.stub.operations.WatchOperation(operations_pb2.WatchOperationRequest(id=self.id), timeout=left):
                    self.record, reconnects = record, 0
                    yield self
                if not self.done:  # the stream ended early (a host shutting down): read the record and go on
                    self.refresh()
            except Unavailable:
                reconnects += 1
                if reconnects > _WATCH_RECONNECTS:
                    raise
                time.sleep(min(0.2 * 2 ** reconnects, 5.0))
            except DeadlineExceeded:
                raise DeadlineExceeded(DeadlineExceeded.status, f"operation {self.id} is still {self.state} after {timeout} s") from None

    def wait(self, timeout: Optional[float] = None) -> R:
        """Blocks until the operation ends; returns its result (see ``result``)."""
        for _ in self.updates(timeout):
            pass
        return self.result

    def watch(self, progress: Union[bool, str, Callable[["Operation[R]"], None]] = True, *,
              timeout: Optional[float] = None) -> R:
        """``wait()`` while reporting progress: a tqdm bar when tqdm is installed, else plain lines on stderr;
        "plain" or "tqdm" choose, a callable gets every update."""
        _progress.show(self.updates(timeout), progress)
        return self.result

    def cancel(self) -> "Operation[R]":
        """Asks the server to stop the operation; the record is then CANCELLING (or final when it had ended).
        ``wait()`` afterwards raises OperationCancelled once it has stopped."""
        self.record = self._client.stub.operations.CancelOperation(operations_pb2.CancelOperationRequest(id=self.id), timeout=self._client.timeout)
        return self

    def _raise_unless_succeeded(self) -> None:
        state = self.state
        if state == "SUCCEEDED":
            return
        if state == "FAILED":
            raise OperationFailed(self, status_code(self.record.error.code), self.record.error.message)
        if state == "CANCELLED":
            raise OperationCancelled(self, status_code(self.record.error.code or "CANCELLED"), self.record.error.message or "cancelled")
        raise StitchingError(f"operation {self.id} is {state}; call wait() for its result")


class OperationsApi:
    """``client.operations``: list, get, start and cancel operations by id. ``client.operations(...)`` lists."""

    def __init__(self, client: "Client"):
        self._c = client

    def __call__(self, kind: Optional[str] = None, state: Union[str, int, None] = None, limit: int = 0) -> list[Operation]:
        return self.list(kind, state, limit)

    def list(self, kind: Optional[str] = None, state: Union[str, int, None] = None, limit: int = 0) -> list[Operation]:
        """Operations, newest first; ``state`` is a name like "running" or an OperationState value; limit 0 = 100."""
        code = 0 if state is None else enum_value(operations_pb2.OperationState, state, "OPERATION_STATE_")
        req = operations_pb2.ListOperationsRequest(kind=kind or "", state=code, limit=limit)
        return [Operation(self._c, r) for r in self._c.stub.operations.ListOperations(req, timeout=self._c.timeout).operations]

    def get(self, id: str) -> Operation:
        return Operation(self._c, self._c.stub.operations.GetOperation(operations_pb2.GetOperationRequest(id=id), timeout=self._c.timeout))

    def cancel(self, id: str) -> Operation:
        return Operation(self._c, self._c.stub.operations.CancelOperation(operations_pb2.CancelOperationRequest(id=id), timeout=self._c.timeout))

    def start(self, kind: str, spec: Message, result_type: Optional[Type[R]] = None) -> Operation[R]:
        """Starts a job of a registered kind with its spec message (the domain calls do this for you)."""
        packed = any_pb2.Any()
        packed.Pack(spec)
        record = self._c.stub.operations.StartOperation(operations_pb2.StartOperationRequest(kind=kind, spec=packed), timeout=self._c.timeout)
        return Operation(self._c, record, result_type)
