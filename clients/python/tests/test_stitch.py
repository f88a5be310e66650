"""client.stitch against a live server: layer matching, fitting, applying (checked with numpy), importing,
directions, spliced evaluation."""
from __future__ import annotations

import uuid

import numpy as np
import pytest

import stitching
from conftest import HOOK_A, HOOK_B, MODEL_A, MODEL_B


def test_layer_match_compares_every_hook_pair(client, extraction):
    a, b = extraction.activation_sets
    m = client.stitch.match_layers(a, b, max_tokens=512)
    assert set(m.hooks_a) == {HOOK_A, "blocks.0.hook_resid_post"} and set(m.hooks_b) == {HOOK_B, "blocks.2.hook_resid_pre"}
    assert m.svcca.shape == m.cka.shape == m.fvu_up.shape == (2, 2)
    assert ((m.cka >= -1e-9) & (m.cka <= 1 + 1e-9)).all()
    assert set(m.best) == set(m.hooks_a) and set(m.best.values()) <= set(m.hooks_b)
    assert m.rule == "heldout_fvu"


def test_fit_reports_held_out_fvus_and_stores_the_matrices(client, fit, activations_a, activations_b):
    assert fit.stitch.kind == "stitch" and fit.method == "lstsq" and fit.flops > 0
    assert 0 < fit.metrics["fvu_up"] < 1.5 and "fvu_down" in fit.metrics
    s = client.stitch.read(fit)
    assert s["P_up"].shape == (32, 48) and s["b_up"].shape == (48,) and s["P_down"].shape == (48, 32)
    x = activations_a[HOOK_A][:50]
    assert np.allclose(client.stitch.apply(fit, x, "up"), x @ s["P_up"] + s["b_up"], atol=1e-4)
    y = activations_b[HOOK_B][:50]
    assert np.allclose(client.stitch.apply(fit.stitch, y, "down"), y @ s["P_down"] + s["b_down"], atol=1e-4)
    manifest = client.artifacts.get(fit.stitch)
    assert manifest.metadata["hook_a"] == HOOK_A and manifest.metadata["hook_b"] == HOOK_B


def test_directions_move_without_bias_and_renormalise(client, fit):
    s = client.stitch.read(fit)
    v = np.random.default_rng(1).standard_normal((3, 32)).astype(np.float32)
    moved = client.stitch.transfer_direction(fit, v, "up")
    assert np.allclose(moved, v @ s["P_up"], atol=1e-4)
    unit = client.stitch.transfer_direction(fit, v[0], "up", renormalize=True)
    assert unit.shape == (48,) and np.linalg.norm(unit) == pytest.approx(1.0, abs=1e-5)


def test_fit_from_numpy_arrays_recovers_a_known_affine_map(client):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((600, 8)).astype(np.float32)
    p, b = rng.standard_normal((8, 6)).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    result = client.stitch.fit(x, x @ p + b, heldout_fraction=0.2).wait()
    assert result.metrics["fvu_up"] < 1e-6
    got = client.stitch.read(result)
    assert np.allclose(got["P_up"], p, atol=1e-3) and np.allclose(got["b_up"], b, atol=1e-3)


def test_an_imported_identity_stitch_applies_as_the_identity(client):
    id = f"st-pytest-{uuid.uuid4().hex[:10]}"
    manifest = client.stitch.import_stitch(np.eye(4), np.zeros(4), np.eye(4), np.zeros(4), id=id, metadata={"model_a": "x"})
    assert manifest.ref.kind == "stitch" and manifest.ref.id == id
    h = np.arange(8, dtype=np.float32).reshape(2, 4)
    assert np.array_equal(client.stitch.apply(id, h, "up_down"), h)
    with pytest.raises(stitching.InvalidArgument) as e:
        client.stitch.apply(id, np.zeros((2, 5)))
    assert e.value.field == "activations"


def test_splice_table_has_every_run(client, fit, rows):
    table = client.stitch.evaluate_splice(MODEL_A, MODEL_B, fit, layer_a=1, layer_b=1, token_ids=rows)
    runs = {r.run: r for r in table.rows}
    assert set(runs) == {"A", "B", "A->B", "B->A", "A->B->A", "B->A->B"}
    assert runs["A"].ce == pytest.approx(runs["A"].clean_ce) and table.sequences == len(rows)
    assert all(np.isfinite(r.ce) and r.ce > 0 for r in table.rows)
