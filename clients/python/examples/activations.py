"""Activations from Python: tokenize, forward with a steering clamp, extract a corpus, read it back.

    python3 clients/python/examples/activations.py HOST:PORT MODEL HOOK

Runs installed (pip install ./clients/python) or from the source tree. Prints one line per step and "ok" when
every check passed.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # the source tree, when not installed
from stitching import Client, Interventions  # noqa: E402

address, model, hook = sys.argv[1], sys.argv[2], sys.argv[3]
with Client(address) as c:
    api = c.activations
    info = api.load(model)
    print(f"model {info.name}: {info.family}, {info.layers} layers, d={info.width}")
    text = "The stitch carries features from a small model to a large one."
    ids = api.tokenize(model, text, bos="never")[0].ids
    assert api.detokenize(model, ids) == text
    print(f"tokens {len(ids)}")

    clean = api.forward(model, [ids], capture=[hook], loss=True)
    h = clean[hook]
    v = np.random.default_rng(0).standard_normal(h.shape[-1]).astype(np.float32)
    steered = api.forward(model, [ids], capture=[hook], loss=True, kl=True, interventions=[Interventions.clamp(hook, v, 3.0)])
    proj = steered[hook][0] @ (v / np.linalg.norm(v))
    assert np.allclose(proj, 3.0, atol=1e-3), proj
    print(f"clean loss {clean.mean_loss:.4f}, clamped loss {steered.mean_loss:.4f}, KL {steered.mean_kl:.4f}")

    docs = [text, "Sparse autoencoders find features.", "A second model of the family is wider and deeper."] * 8
    result = api.extract({model: [hook]}, texts=docs, context=8, shard_tokens=32, batch_size=2).wait()
    acts = api.read(result.activation_sets[0])
    rows = acts["token_ids"].reshape(-1, 8)
    direct = api.forward(model, rows, capture=[hook])[hook].reshape(-1, h.shape[-1])
    assert np.abs(direct - acts[hook]).max() < 1e-4
    print(f"extracted {acts[hook].shape[0]} tokens into {result.activation_sets[0].id} ({len(set(acts['row']))} rows)")
print("ok")
