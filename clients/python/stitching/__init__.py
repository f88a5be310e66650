"""Python client for the stitching gRPC services.

Generated stubs live in ``stitching/_gen`` (run ``generate.sh``). protoc writes them with absolute
imports (``from stitching.common.v1 import tensor_pb2``), so this package adds ``_gen/stitching`` to
its own ``__path__``: ``stitching.common.v1``, ``stitching.sae.v1``, ... then resolve to the generated
modules. ``_gen`` itself goes at the end of ``sys.path`` for our copy of ``grpc_health.v1`` (an
installed grpcio-health-checking, if any, takes precedence).
"""
import os as _os
import sys as _sys

_GEN = _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "_gen")
if not _os.path.isdir(_os.path.join(_GEN, "stitching")):
    raise ImportError(f"generated stubs not found in {_GEN}; run clients/python/generate.sh first")
__path__.append(_os.path.join(_GEN, "stitching"))
if _GEN not in _sys.path:
    _sys.path.append(_GEN)

from .client import Client, Health, Interventions, StitchingError, state_name, tensor, to_numpy  # noqa: E402

__all__ = ["Client", "Health", "Interventions", "StitchingError", "state_name", "tensor", "to_numpy"]
