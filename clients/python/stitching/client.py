"""The Client: one channel to a stitching server and the typed sub-APIs over it."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional, Sequence

import grpc

from ._channel import health_pb2, open_channel, stubs
from ._compat import FlatMethods
from .api import ActivationsApi, ArtifactsApi, EvalApi, ExperimentsApi, SaeApi, StitchApi
from .common.v1 import server_info_pb2
from .errors import Unimplemented
from .operations import OperationsApi


@dataclass(frozen=True)
class Health:
    status: str                       # grpc.health.v1 verdict: SERVING, NOT_SERVING, UNKNOWN, ...
    checks: dict[str, str] = field(default_factory=dict)  # name -> HEALTHY / DEGRADED / UNHEALTHY
    info: Optional[server_info_pb2.ServerInfo] = None

    @property
    def ok(self) -> bool:
        return self.status == "SERVING"


class Client(FlatMethods):
    """``with Client("127.0.0.1:50051") as c: ...`` (also "http://host:port", or "https://host:port" for TLS).

    Sub-APIs: ``c.artifacts``, ``c.operations``, ``c.activations``, ``c.stitch``, ``c.sae``, ``c.eval``,
    ``c.experiments``; numpy arrays go in and come out. Long work returns an Operation (wait / watch / cancel).

    ``timeout``: seconds per unary call (None: no deadline; streams of tensors have none unless given one).
    ``retries``: attempts in all for calls that fail UNAVAILABLE, with exponential backoff (1 turns retrying off).
    ``token`` (default: $STITCHING_TOKEN) goes as a bearer token on every call. Failed calls raise
    stitching.RpcError subclasses (NotFound, InvalidArgument with ``.field``, ...), which are grpc.RpcErrors too.
    The generated stubs, with the same error translation, are under ``c.stub`` (artifacts, operations,
    server_info, health, activations, stitch, sae, eval, experiments).
    """

    def __init__(self, address: str = "127.0.0.1:50051", *, timeout: Optional[float] = 30.0,
                 channel: Optional[grpc.Channel] = None, token: Optional[str] = None, retries: int = 5,
                 credentials: Optional[grpc.ChannelCredentials] = None, options: Sequence[tuple[str, object]] = ()):
        self.address = address
        self.timeout = timeout
        self._owns_channel = channel is None
        self.channel = channel or open_channel(address, retries=retries, credentials=credentials, options=options)
        self.stub = stubs(self.channel, token if token is not None else os.environ.get("STITCHING_TOKEN"))
        self.artifacts = ArtifactsApi(self)
        self.operations = OperationsApi(self)
        self.activations = ActivationsApi(self)
        self.stitch = StitchApi(self)
        self.sae = SaeApi(self)
        self.eval = EvalApi(self)
        self.experiments = ExperimentsApi(self)

    def close(self) -> None:
        if self._owns_channel:
            self.channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.address!r})"

    def health(self, service: str = "") -> Health:
        """The overall grpc.health.v1 verdict (or one service's), with the named checks from ServerInfoService
        (empty, and ``info`` None, on a host that does not serve it)."""
        r = self.stub.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=self.timeout)
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)
        try:
            info = self.server_info()
        except Unimplemented:  # a host without ServerInfoService: the verdict alone
            return Health(status)
        checks = {c.name: server_info_pb2.CheckStatus.Name(c.status).removeprefix("CHECK_STATUS_") for c in info.checks}
        return Health(status, checks, info)

    def server_info(self) -> server_info_pb2.ServerInfo:
        """Version, hosted services, health checks, store, torch runtime."""
        return self.stub.server_info.GetServerInfo(server_info_pb2.GetServerInfoRequest(), timeout=self.timeout)
