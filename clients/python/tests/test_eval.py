"""client.eval against a live server: SAE evaluation, probe, steering and feature-level transfer (tiny budgets)."""
from __future__ import annotations

import numpy as np

from conftest import HOOK_A, HOOK_B, MODEL_A, MODEL_B

TECHNICAL = ["The stitch carries the features of the small model across.", "Sparse autoencoders train faster from a warm start.",
             "The ledger counts every operation of the fit."]
STORY = ["She walked along the river in the morning light.", "The old house stood empty at the end of the lane.",
         "He laughed and told a story about the sea."]


def labelled() -> list[tuple[str, int, str]]:
    """Two-sentence documents, labels alternating in pairs so that every split (and the even and odd documents of
    the validation split, which steering's judge needs) holds both classes."""
    out = []
    for split, n in (("train", 12), ("validation", 8), ("test", 8)):
        for i in range(n):
            label = (i // 2) % 2
            texts = TECHNICAL if label else STORY
            out.append((texts[i % 3] + " " + texts[(i + 1) % 3], label, split))
    return out


def test_sae_evaluation_beats_a_random_sae(client, sae_a, rows):
    e = client.eval.evaluate_sae(MODEL_A, sae_a, rows)
    assert e.hook == HOOK_A and e.rows == len(rows) and e.tokens > 0
    assert e.l0 <= 4 + 1e-9 and 0 < e.fvu < 1.5 and e.ce_clean > 0
    random = client.eval.evaluate_sae(MODEL_A, sae_a, rows, random_seed=7)
    assert random.fvu > e.fvu
    assert client.evaluate_sae(MODEL_A, sae_a.sae.ref.id, rows).fvu == e.fvu  # the 0.x form


def test_probe_transfer_scores_every_probe(client, fit, sae_a, transferred):
    r = client.eval.probes(MODEL_A, MODEL_B, labelled(), hook_a=HOOK_A, hook_b=HOOK_B, stitch=fit, sae_a=sae_a,
                           sae_transferred=transferred, k=[1, 2], context=16, max_tokens_per_split=2000).wait(timeout=120)
    [task] = r.tasks
    probes = {s.probe for s in task.scores}
    assert {"dense_a", "dense_b", "dense_transferred", "sparse_a", "sparse_transferred"} <= probes
    assert all(0 <= s.accuracy <= 1 and s.ci_low <= s.accuracy <= s.ci_high for s in task.scores)
    assert max(s.accuracy for s in task.scores if s.probe == "dense_a") == 1.0  # two topics, word-separable


def test_steering_transfer_runs_every_condition(client, fit):
    r = client.eval.steering(MODEL_A, MODEL_B, fit, hook_a=HOOK_A, hook_b=HOOK_B, dataset=labelled(), prompts=2,
                             prompt_words=3, new_tokens=2, context=16, max_tokens=512).wait(timeout=120)
    assert {c.name for c in r.conditions} == {"a", "a_steered", "b", "b_steered_native", "b_steered_transferred"}
    assert all(c.trials == 2 for c in r.conditions)
    assert len(r.vector_transferred) == 48 and abs(np.linalg.norm(r.vector_transferred) - 1) < 1e-4


def test_feature_transfer_correlates_latents(client, fit, sae_a, transferred):
    r = client.eval.features(MODEL_A, MODEL_B, sae_a=sae_a, sae_transferred=transferred, stitch=fit, max_tokens=256,
                             context=32, sentences=2, rewrites=1, min_active=2).wait(timeout=120)
    groups = {g.group: g for g in r.groups}
    assert {"transferred", "structural", "semantic", "random SAE"} <= set(groups)
    assert all(sum(g.histogram) == g.latents for g in r.groups)
    assert r.structural + r.semantic + r.unclassified == 64
