"""client.sae against a live server: training (with progress), describe, encode / decode against numpy, transfer
through the stitch, warm start, compare, export / import."""
from __future__ import annotations

import os
import uuid

import numpy as np
import pytest

import stitching
from conftest import HOOK_A, HOOK_B, MODEL_B


def test_training_result_carries_the_sae_and_its_ledger(client, sae_a):
    info = sae_a.sae
    assert (info.d_in, info.d_sae, info.k, info.architecture) == (32, 64, 4, "topk")
    assert info.hook == HOOK_A and sae_a.steps > 0 and sae_a.flops > 0
    assert [e.phase for e in sae_a.ledger.entries] == ["sae.train"]
    assert 0 < info.metrics["fvu"] < 1.5 and info.metrics["l0"] == pytest.approx(4)
    described = client.sae.describe(info.ref)
    assert described.ref == info.ref and described.d_sae == 64
    cfg = client.sae.cfg(info)
    assert cfg["d_in"] == 32 and cfg["d_sae"] == 64


def test_encode_is_k_sparse_and_decode_is_the_affine_decoder(client, sae_a, activations_a):
    x = activations_a[HOOK_A][:40]
    z = client.sae.encode(sae_a, x)
    assert z.shape == (40, 64) and ((z != 0).sum(1) <= 4).all()
    w = client.sae.weights(sae_a)
    scale = client.sae.describe(sae_a).scaling_factor or 1.0
    assert np.allclose(client.sae.decode(sae_a, z), (z @ w["W_dec"] + w["b_dec"]) / scale, atol=1e-4)
    x_hat = client.sae.decode(sae_a, z)
    fvu = ((x - x_hat) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
    assert fvu < 1.0


def test_watch_reports_progress_and_returns_the_result(client, extraction, capsys):
    seen = []
    result = client.sae.train(extraction.activation_sets[1], hook=HOOK_B, d_sae=32, k=2, batch_size=64, seed=5).watch(seen.append)
    assert seen and seen[-1].state == "SUCCEEDED" and result.sae.d_in == 48
    client.sae.train(extraction.activation_sets[1], hook=HOOK_B, d_sae=32, k=2, batch_size=64, seed=6).watch("plain")
    assert "sae.train SUCCEEDED after" in capsys.readouterr().err


def test_transfer_then_warm_start_then_compare(client, extraction, sae_a, transferred, fit, activations_b):
    assert (transferred.d_in, transferred.d_sae, transferred.model, transferred.hook) == (48, 64, MODEL_B, HOOK_B)
    assert client.sae.encode(transferred, activations_b[HOOK_B][:10]).shape == (10, 64)
    b = extraction.activation_sets[1]
    warm = client.sae.train(b, hook=HOOK_B, init=transferred, batch_size=64, seed=3, log_every=2).wait()
    scratch = client.sae.train(b, hook=HOOK_B, d_sae=64, k=4, batch_size=64, seed=3, log_every=2).wait()
    assert warm.sae.d_sae == 64
    assert [e.phase for e in warm.ledger.entries][0] == "stitch.fit"  # the stitch's FLOPs count towards the warm run
    assert warm.flops > scratch.flops - 1
    cmp = client.sae.compare(scratch, warm, thresholds=[0.1, 0.2])
    assert len(cmp.rows) >= 2 and cmp.stitch_flops == pytest.approx(fit.flops)


def test_export_and_import_round_trip_under_an_allowed_root(client, sae_a, activations_a):
    root = os.environ.get("STITCHING_ALLOWED_ROOT")
    if not root:
        with pytest.raises(stitching.PermissionDenied):  # no allowed root here: the server refuses every path
            client.sae.export_to(sae_a, "/nonexistent-pytest-root/sae")
        pytest.skip("set STITCHING_ALLOWED_ROOT (a folder under the server's Stitching__AllowedRoots) for the round trip")
    folder = os.path.join(root, f"sae-{uuid.uuid4().hex[:10]}")
    exported = client.sae.export_to(sae_a, folder)
    assert {"cfg.json", "sae_weights.safetensors"} <= {os.path.basename(f) for f in exported.files}
    back = client.sae.import_from(folder, id=f"sae-imported-{uuid.uuid4().hex[:8]}")
    assert back.d_sae == 64 and back.hook == HOOK_A
    # the export folds the input scaling into the weights (normalize_activations "none"): the same function
    x = activations_a[HOOK_A][:20]
    assert back.normalize_activations == "none"
    assert np.allclose(client.sae.encode(back, x), client.sae.encode(sae_a, x), rtol=1e-4, atol=1e-4)
    assert np.allclose(client.sae.decode(back, client.sae.encode(back, x)), client.sae.decode(sae_a, client.sae.encode(sae_a, x)), atol=1e-4)
    with pytest.raises(stitching.AlreadyExists):
        client.sae.export_to(sae_a, folder)


def test_a_width_of_minus_one_names_the_field(client, extraction):
    with pytest.raises(stitching.InvalidArgument) as e:
        client.sae.train(extraction.activation_sets[0], hook=HOOK_A, d_sae=-1)
    assert e.value.field == "sae.d_sae"
    with pytest.raises(TypeError, match="no field 'learning_rate'"):
        client.sae.train(extraction.activation_sets[0], hook=HOOK_A, d_sae=8, learning_rate=1e-3)
