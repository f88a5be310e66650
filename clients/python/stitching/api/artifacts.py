"""``client.artifacts``: the artifact store (ArtifactsService): manifests, tensor uploads and reads, files."""
from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, Collection, Mapping, Optional

import numpy as np

from .._refs import ArtifactLike, artifact_ref
from ..common.v1 import artifacts_pb2 as pb
from ..errors import AlreadyExists, NotFound, StitchingError
from ..tensors import Bf16, assemble, chunks

if TYPE_CHECKING:
    from ..client import Client


class ArtifactsApi:
    """Every artifact has a kind ("tensors", "activation-set", "stitch", "sae", "report", ...), an id and a
    manifest (files with sha256, metadata, metrics, FLOPs ledger). ``client.artifacts(kind)`` lists them."""

    def __init__(self, client: "Client"):
        self._c = client

    def __call__(self, kind: Optional[str] = None) -> list[pb.ArtifactManifest]:
        return self.list(kind)

    def list(self, kind: Optional[str] = None) -> list[pb.ArtifactManifest]:
        return list(self._c.stub.artifacts.ListArtifacts(pb.ListArtifactsRequest(kind=kind or ""), timeout=self._c.timeout).artifacts)

    def get(self, kind: ArtifactLike, id: Optional[str] = None) -> pb.ArtifactManifest:
        """The manifest of ``(kind, id)`` or of a ref; NotFound when there is none."""
        ref = artifact_ref(kind, "") if id is None else pb.ArtifactRef(kind=str(kind), id=id)
        return self._c.stub.artifacts.GetArtifact(pb.GetArtifactRequest(ref=ref), timeout=self._c.timeout)

    def exists(self, kind: ArtifactLike, id: Optional[str] = None) -> bool:
        try:
            self.get(kind, id)
            return True
        except NotFound:
            return False

    def upload(self, kind: str, id: str, tensors: Mapping[str, np.ndarray], file: Optional[str] = None,
               metadata: Optional[Mapping[str, str]] = None, *, bf16: Bf16 = False,
               timeout: Optional[float] = None) -> pb.ArtifactManifest:
        """Uploads ``tensors`` as one safetensors file (default tensors.safetensors) of a new artifact; returns its
        manifest. Artifacts are immutable: an existing id raises AlreadyExists."""
        target = pb.UploadTarget(ref=pb.ArtifactRef(kind=kind, id=id), file=file or "", metadata=dict(metadata or {}))
        stream = chunks(tensors, bf16)

        def requests():
            yield pb.UploadTensorsRequest(target=target)
            for chunk in stream:
                yield pb.UploadTensorsRequest(chunk=chunk)

        return self._c.stub.artifacts.UploadTensors(requests(), timeout=timeout)

    def put(self, tensors: Mapping[str, np.ndarray], metadata: Optional[Mapping[str, str]] = None, *,
            prefix: str = "np") -> pb.ArtifactRef:
        """Uploads tensors as a "tensors" artifact whose id is their content hash, so putting the same arrays twice
        uploads once; returns its ref (what fit, import_stitch and friends take)."""
        digest = hashlib.sha256()
        for name, value in tensors.items():
            arr = np.ascontiguousarray(value)
            digest.update(f"{name}\0{arr.dtype.str}\0{arr.shape}\0".encode())
            digest.update(arr.tobytes())
        ref = pb.ArtifactRef(kind="tensors", id=f"{prefix}-{digest.hexdigest()[:24]}")
        try:
            self.upload(ref.kind, ref.id, tensors, metadata=metadata)
        except AlreadyExists:
            pass
        return ref

    def read_tensors(self, kind: ArtifactLike, id: Optional[str] = None, names: Optional[Collection[str]] = None,
                     file: Optional[str] = None, *, bf16: str = "uint16", timeout: Optional[float] = None) -> dict[str, np.ndarray]:
        """Tensors (all, or ``names``) of one safetensors file of an artifact, in file order. BF16 tensors come back
        as uint16 bit patterns, or widened exactly with ``bf16="float32"``."""
        ref = artifact_ref(kind, "") if id is None else pb.ArtifactRef(kind=str(kind), id=id)
        req = pb.ReadTensorsRequest(ref=ref, file=file or "", names=list(names or []))
        return assemble(self._c.stub.artifacts.ReadTensors(req, timeout=timeout), bf16)

    def read_file(self, kind: ArtifactLike, id: Optional[str] = None, file: str = "", *,
                  timeout: Optional[float] = None) -> bytes:
        """The bytes of one file of an artifact (checked by the server against the manifest's sha256, and here again)."""
        ref = artifact_ref(kind, "") if id is None else pb.ArtifactRef(kind=str(kind), id=id)
        parts, digest = [], None
        for chunk in self._c.stub.artifacts.ReadFile(pb.ReadFileRequest(ref=ref, file=file), timeout=timeout or self._c.timeout):
            digest = digest or chunk.sha256
            parts.append(chunk.data)
        data = b"".join(parts)
        if digest and hashlib.sha256(data).hexdigest() != digest:
            raise StitchingError(f"{ref.kind}/{ref.id}/{file}: received bytes do not match the manifest's sha256")
        return data

    def read_json(self, kind: ArtifactLike, id: Optional[str] = None, file: str = "") -> Any:
        """A JSON file of an artifact (an SAE's cfg.json, a report's report.json), parsed."""
        return json.loads(self.read_file(kind, id, file))
