"""Health, server info and the artifact store against a live server."""
from __future__ import annotations

import uuid

import grpc
import numpy as np
import pytest

import stitching
from stitching._channel import SERVICES


def test_health_serves_with_named_checks(client):
    h = client.health()
    assert h.ok and h.status == "SERVING"
    assert h.checks.get("store") == "HEALTHY"
    assert h.info is not None and h.info.store_root


def test_every_service_the_server_hosts_speaks_the_client_contract_version(client):
    hosted = [s for s in client.server_info().services if s.startswith("stitching.")]
    assert hosted, "the server names no stitching services"
    for service in hosted:
        assert f".{stitching.CONTRACTS}." in service
        assert service in SERVICES, f"{service} has no sub-API in this client"


def test_uploaded_tensors_read_back_bit_for_bit(client):
    rng = np.random.default_rng(0)
    tensors = {
        "big_f32": rng.standard_normal((700, 777), dtype=np.float32),  # ~2 MiB: several upload chunks
        "f16": rng.standard_normal((3, 5)).astype(np.float16),
        "f64": rng.standard_normal(7),
        "i32": rng.integers(-2 ** 31, 2 ** 31 - 1, (2, 2, 2), dtype=np.int32),
        "i64": rng.integers(-2 ** 62, 2 ** 62, 5, dtype=np.int64),
        "u8": rng.integers(0, 256, 16, dtype=np.uint8),
        "bf16": rng.integers(0, 2 ** 16, (4, 4), dtype=np.uint16),
        "scalar": np.array(42.0, dtype=np.float32),
    }
    id = f"pytest-{uuid.uuid4().hex[:12]}"
    manifest = client.artifacts.upload("tensors", id, tensors, metadata={"source": "pytest"}, bf16={"bf16"})
    assert manifest.ref.id == id and manifest.metadata["source"] == "pytest"
    assert [f.name for f in manifest.files] == ["tensors.safetensors"]
    back = client.artifacts.read_tensors("tensors", id)
    assert list(back) == list(tensors)
    for name, want in tensors.items():
        assert back[name].shape == want.shape and back[name].dtype == want.dtype and np.array_equal(back[name], want), name
    only = client.artifacts.read_tensors(manifest.ref, names=["i64"])
    assert list(only) == ["i64"]
    assert client.artifacts.exists("tensors", id) and not client.artifacts.exists("tensors", id + "-not")
    assert id in {m.ref.id for m in client.artifacts("tensors")}
    raw = client.artifacts.read_file(manifest.ref, file="tensors.safetensors")
    assert len(raw) == manifest.files[0].size_bytes


def test_immutable_ids_unknown_artifacts_and_bad_names_raise_typed_errors(client):
    id = f"pytest-{uuid.uuid4().hex[:12]}"
    client.artifacts.upload("tensors", id, {"x": np.zeros(3, np.float32)})
    with pytest.raises(stitching.AlreadyExists) as exists:
        client.artifacts.upload("tensors", id, {"x": np.ones(3, np.float32)})
    assert exists.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(stitching.NotFound) as missing:
        client.artifacts.get("tensors", id + "-missing")
    assert isinstance(missing.value, grpc.RpcError) and missing.value.details() == missing.value.message
    with pytest.raises(stitching.InvalidArgument) as bad:
        client.artifacts.upload("bad kind!", id, {"x": np.zeros(1, np.float32)})
    assert bad.value.field == "target.ref.kind"
    with pytest.raises(stitching.StitchingError, match="no DType"):
        client.artifacts.upload("tensors", id + "-c", {"c": np.zeros(2, np.complex64)})


def test_put_is_content_addressed(client):
    arrays = {"activations": np.arange(12, dtype=np.float32).reshape(3, 4)}
    first = client.artifacts.put(arrays)
    assert client.artifacts.put(arrays) == first
    assert client.artifacts.put({"activations": arrays["activations"] + 1}) != first
    assert np.array_equal(client.artifacts.read_tensors(first)["activations"], arrays["activations"])


def test_flat_methods_of_the_first_client_still_work(client):
    id = f"pytest-{uuid.uuid4().hex[:12]}"
    client.upload_tensors("tensors", id, {"w": np.ones((2, 2), np.float32)})
    assert np.array_equal(client.read_tensors("tensors", id)["w"], np.ones((2, 2)))
    assert client.artifact("tensors", id).ref.id == id
