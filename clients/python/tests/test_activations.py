"""client.activations against a live server with the tiny models: models, tokens, forward with interventions,
generation, paired extraction read back."""
from __future__ import annotations

import numpy as np
import pytest

import stitching
from stitching import Interventions
from conftest import CONTEXT, DOCUMENTS, HOOK_A, HOOK_B, MODEL_A, MODEL_B

TEXT = "The stitch carries features from a small model to a large one."


def test_models_are_listed_and_described_with_their_hooks(client, models):
    info = client.activations.describe(MODEL_B)
    assert (info.family, info.layers, info.width) == ("gpt_neox", 3, 48)
    assert HOOK_B in info.hooks and "blocks.2.hook_resid_post" in info.hooks
    loaded = client.activations.load(MODEL_A)
    assert loaded.loaded and loaded.width == 32


def test_tokenize_and_detokenize_round_trip_with_offsets(client, models):
    [tokens] = client.activations.tokenize(MODEL_A, TEXT, bos="never")
    assert tokens.ids.dtype == np.int32 and len(tokens.ids) == len(tokens.tokens) == len(tokens.starts)
    assert not tokens.special.any()
    assert "".join(TEXT[s:e] for s, e in zip(tokens.starts, tokens.ends)).replace(" ", "") == TEXT.replace(" ", "")
    assert client.activations.detokenize(MODEL_A, tokens.ids) == TEXT
    [with_bos] = client.activations.tokenize(MODEL_A, TEXT, bos="always")
    assert with_bos.special[0] and len(with_bos.ids) == len(tokens.ids) + 1


def test_forward_captures_and_a_clamp_sets_the_projection(client, models):
    ids = client.tokenize(MODEL_A, TEXT, bos="never")[0]
    clean = client.activations.forward(MODEL_A, [ids], capture=[HOOK_A], loss=True, logits=True, top_k=3)
    h = clean[HOOK_A]
    assert h.shape == (1, len(ids), 32) and h.dtype == np.float32
    assert clean.logits.shape == (1, len(ids), 320) and clean.loss.shape == (1, len(ids) - 1)
    assert clean.mean_loss == pytest.approx(float(clean.loss.mean()), rel=1e-5)
    assert np.array_equal(clean.top_k_ids[0, :, 0], clean.logits[0].argmax(-1))
    v = np.random.default_rng(0).standard_normal(32).astype(np.float32)
    steered = client.activations.forward(MODEL_A, [ids], capture=[HOOK_A], kl=True,
                                         interventions=[Interventions.clamp(HOOK_A, v, 3.0)])
    assert np.allclose(steered[HOOK_A][0] @ (v / np.linalg.norm(v)), 3.0, atol=1e-3)
    assert steered.mean_kl > 0 and steered.clean_mean_loss == pytest.approx(clean.mean_loss, rel=1e-5)
    replaced = client.activations.forward(MODEL_A, [ids], capture=[HOOK_A], interventions=[Interventions.ablate(HOOK_A)])
    assert np.abs(replaced[HOOK_A]).max() == 0
    assert set(client.forward(MODEL_A, [ids], capture=[HOOK_A], loss=True)) >= {HOOK_A, "loss", "mean_loss"}  # the 0.x form


def test_a_stitch_round_trip_intervention_matches_applying_the_stitch(client, fit, models):
    ids = client.tokenize(MODEL_A, TEXT, bos="never")[0]
    clean = client.activations.forward(MODEL_A, [ids], capture=[HOOK_A])[HOOK_A]
    spliced = client.activations.forward(MODEL_A, [ids], capture=[HOOK_A], interventions=[Interventions.stitch(HOOK_A, fit)])
    assert np.allclose(spliced[HOOK_A], client.stitch.apply(fit, clean, "up_down"), atol=1e-4)


def test_greedy_generation_is_deterministic(client, models):
    first = client.activations.generate(MODEL_A, "The stitch", max_new_tokens=6, ignore_eos=True)
    again = client.activations.generate(MODEL_A, "The stitch", max_new_tokens=6, ignore_eos=True)
    assert len(first.new_ids) == 6 and first.stop_reason == "length"
    assert np.array_equal(first.new_ids, again.new_ids)
    assert first.text == client.activations.detokenize(MODEL_A, first.new_ids)


def test_paired_extraction_holds_what_forward_computes(client, extraction, activations_a, activations_b):
    assert extraction.rows * CONTEXT == extraction.tokens and len(extraction.activation_sets) == 2
    rows = activations_a["token_ids"].reshape(-1, CONTEXT)
    assert np.array_equal(rows, activations_b["token_ids"].reshape(-1, CONTEXT))  # one TokenSet for both
    direct = client.activations.forward(MODEL_A, rows[:4], capture=[HOOK_A])[HOOK_A].reshape(-1, 32)
    assert np.abs(direct - activations_a[HOOK_A][:4 * CONTEXT]).max() < 1e-4
    assert activations_b[HOOK_B].shape == (extraction.tokens, 48)
    again = client.activations.extract({MODEL_A: [HOOK_A, "blocks.0.hook_resid_post"], MODEL_B: [HOOK_B, "blocks.2.hook_resid_pre"]},
                                       texts=DOCUMENTS, context=CONTEXT, shard_tokens=256, batch_size=8).wait()
    assert list(again.reused) == [True, True] and again.activation_sets[0] == extraction.activation_sets[0]


def test_unembedding_weights_come_back_as_numpy(client, models):
    w = client.activations.weights(MODEL_B, ["unembed.W_U"])["unembed.W_U"]
    assert w.shape == (48, 320) and w.dtype == np.float32


def test_a_hook_the_model_lacks_names_the_field(client, models):
    with pytest.raises(stitching.InvalidArgument) as e:
        client.activations.forward(MODEL_A, [[1, 2, 3]], capture=["blocks.7.hook_resid_pre"])
    assert e.value.field == "capture[0]" and "layers 0..1" in e.value.message
