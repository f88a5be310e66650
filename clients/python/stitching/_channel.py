"""The channel (message limits, retry policy, bearer token) and the stubs over it, whose failures raise
stitching.errors types instead of bare grpc.RpcError."""
from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Iterator, Sequence

import grpc

from .activations.v1 import activations_pb2_grpc
from .common.v1 import artifacts_pb2_grpc, operations_pb2_grpc, server_info_pb2_grpc
from .errors import from_grpc
from .eval.v1 import eval_pb2_grpc, experiment_pb2_grpc
from .sae.v1 import sae_pb2_grpc
from .stitch.v1 import stitch_pb2_grpc
from ._auth import Bearer

try:  # grpcio-health-checking, when installed, owns grpc_health/v1/health.proto in the descriptor pool
    from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-not-found]
except ImportError:  # our copy of the same file (same package grpc.health.v1, same wire format)
    from ._health import health_pb2, health_pb2_grpc

MAX_MESSAGE_BYTES = 64 << 20

SERVICES = (
    "grpc.health.v1.Health",
    "stitching.common.v1.ArtifactsService", "stitching.common.v1.OperationsService", "stitching.common.v1.ServerInfoService",
    "stitching.activations.v1.ActivationsService", "stitching.stitch.v1.StitchService", "stitching.sae.v1.SaeService",
    "stitching.eval.v1.EvalService", "stitching.eval.v1.ExperimentsService",
)


def service_config(retries: int) -> str:
    """gRPC service config: calls that fail UNAVAILABLE (server restarting, connection refused) are retried with
    exponential backoff, up to ``retries`` attempts in all (grpc caps it at 5)."""
    if retries <= 1:
        return json.dumps({"methodConfig": []})
    policy = {"maxAttempts": min(retries, 5), "initialBackoff": "0.2s", "maxBackoff": "5s", "backoffMultiplier": 2,
              "retryableStatusCodes": ["UNAVAILABLE"]}
    return json.dumps({"methodConfig": [{"name": [{"service": s} for s in SERVICES], "retryPolicy": policy}]})


def target(address: str) -> tuple[str, bool]:
    """host:port and whether TLS is meant: "http://h:p" and "h:p" are plaintext, "https://h:p" is TLS."""
    if address.startswith("https://"):
        return address[len("https://"):].rstrip("/"), True
    if address.startswith("http://"):
        return address[len("http://"):].rstrip("/"), False
    return address, False


def open_channel(address: str, *, retries: int = 5, credentials: grpc.ChannelCredentials | None = None,
                 options: Sequence[tuple[str, object]] = ()) -> grpc.Channel:
    host, tls = target(address)
    opts = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES), ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.enable_retries", 1 if retries > 1 else 0), ("grpc.service_config", service_config(retries)), *options]
    if credentials is not None or tls:
        return grpc.secure_channel(host, credentials or grpc.ssl_channel_credentials(), options=opts)
    return grpc.insecure_channel(host, options=opts)


class _Translating:
    """A generated stub whose calls raise stitching errors (RpcError subclasses) instead of grpc.RpcError; response
    streams are generators that cancel the call when abandoned."""

    def __init__(self, stub, service: str):
        self._stub = stub
        self._service = service

    def __getattr__(self, name: str):
        method = getattr(self._stub, name)
        path = f"/{self._service}/{name}"

        def call(*args, **kwargs):
            try:
                result = method(*args, **kwargs)
            except grpc.RpcError as e:
                raise from_grpc(e, path) from None
            if isinstance(result, grpc.Call) and hasattr(result, "__next__"):
                return _stream(result, path)
            return result

        call.__name__ = name
        return call


def _stream(call, path: str) -> Iterator:
    try:
        yield from call
    except grpc.RpcError as e:
        raise from_grpc(e, path) from None
    finally:
        call.cancel()  # no-op once the stream has ended


def stubs(channel: grpc.Channel, token: str | None) -> SimpleNamespace:
    """Every service's stub over ``channel`` (with the bearer token on every call when one is given)."""
    c = grpc.intercept_channel(channel, Bearer(token)) if token else channel
    made = {
        "health": (health_pb2_grpc.HealthStub, "grpc.health.v1.Health"),
        "artifacts": (artifacts_pb2_grpc.ArtifactsServiceStub, "stitching.common.v1.ArtifactsService"),
        "operations": (operations_pb2_grpc.OperationsServiceStub, "stitching.common.v1.OperationsService"),
        "server_info": (server_info_pb2_grpc.ServerInfoServiceStub, "stitching.common.v1.ServerInfoService"),
        "activations": (activations_pb2_grpc.ActivationsServiceStub, "stitching.activations.v1.ActivationsService"),
        "stitch": (stitch_pb2_grpc.StitchServiceStub, "stitching.stitch.v1.StitchService"),
        "sae": (sae_pb2_grpc.SaeServiceStub, "stitching.sae.v1.SaeService"),
        "eval": (eval_pb2_grpc.EvalServiceStub, "stitching.eval.v1.EvalService"),
        "experiments": (experiment_pb2_grpc.ExperimentsServiceStub, "stitching.eval.v1.ExperimentsService"),
    }
    return SimpleNamespace(**{name: _Translating(cls(c), service) for name, (cls, service) in made.items()})
