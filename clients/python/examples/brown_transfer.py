"""The stitch and the SAE transfer on the Brown family, step by step with the typed API (a notebook in script form:
each "# %%" cell runs in VS Code / Jupyter as it is).

    ./stitch zoo build                     # brown-s, brown-m, brown-l into the model store (once)
    ./stitch serve &                       # the server, on 127.0.0.1:50051
    python3 clients/python/examples/brown_transfer.py 127.0.0.1:50051
    python3 clients/python/examples/brown_transfer.py 127.0.0.1:50051 --small brown-ci-s --large brown-ci-l \
        --train-tokens 16384 --test-rows 16 --context 64          # the ci family (zoo build --family ci), in a minute

The settings are the Brown builtin's (`stitch paper`; services/eval/Experiments/ExperimentSpecs.cs, docs/science.md):
brown-s layer 1 -> brown-l layer 1 (blocks.1.hook_resid_pre, the rule heldout_fvu's choice), an lstsq stitch, TopK
SAEs of 4 x d_B latents with k 16, Adam lr 1e-3, 1024 tokens per step, 4 passes over 262,144 training tokens of
brown:train, evaluated on 128 rows of brown:test. Every step is stored by content, so a second run reuses them all.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # the source tree, when not installed
from stitching import Client, Interventions  # noqa: E402

# %% Settings
parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("address", nargs="?", default="127.0.0.1:50051")
parser.add_argument("--small", default="brown-s")
parser.add_argument("--large", default="brown-l")
parser.add_argument("--layer-a", type=int, default=1)
parser.add_argument("--layer-b", type=int, default=1)
parser.add_argument("--context", type=int, default=128)
parser.add_argument("--train-tokens", type=int, default=262_144)
parser.add_argument("--test-rows", type=int, default=128)
parser.add_argument("--width-multiple", type=int, default=4)
parser.add_argument("--k", type=int, default=16)
parser.add_argument("--epochs", type=int, default=4)
args = parser.parse_args()
hook_a, hook_b = f"blocks.{args.layer_a}.hook_resid_pre", f"blocks.{args.layer_b}.hook_resid_pre"
c = Client(args.address, timeout=600)

# %% The models (built by `./stitch zoo build`)
missing = {m.name for m in c.activations.models()}
missing = [m for m in (args.small, args.large) if m not in missing]
if missing:
    sys.exit(f"{', '.join(missing)} not in the server's model store: run ./stitch zoo build (the ci family: --family ci)")
a, b = c.activations.describe(args.small), c.activations.describe(args.large)
print(f"A = {a.name}: {a.layers} layers, d {a.width}; B = {b.name}: {b.layers} layers, d {b.width}; stitch {hook_a} -> {hook_b}")

# %% Paired extraction: one TokenSet, both models' streams (training split, and held-out rows of the test split)
hooks = {args.small: [hook_a], args.large: [hook_b]}
train = c.activations.extract(hooks, corpus="brown:train", context=args.context, max_tokens=args.train_tokens,
                              bos="never", batch_size=16).watch()
test = c.activations.extract(hooks, corpus="brown:test", context=args.context, max_tokens=args.test_rows * args.context,
                             bos="never", batch_size=16).watch()
train_a, train_b = train.activation_sets
test_a, test_b = test.activation_sets
print(f"train: {train.tokens} tokens ({train_a.id}, {train_b.id}); test: {test.rows} rows")

# %% The stitch: least squares A <-> B, with held-out FVUs
fit = c.stitch.fit((train_a, hook_a), (train_b, hook_b), method="lstsq").watch()
print(f"stitch {fit.stitch.id}: FVU up {fit.metrics['fvu_up']:.3f}, down {fit.metrics['fvu_down']:.3f}, "
      f"round trip A->B->A {fit.metrics['fvu_up_down']:.3f}; {fit.flops:.3g} FLOPs")

# It is an affine map on numpy arrays too: apply it here and on the server, and compare.
x = c.activations.read(test_a, names=[hook_a])[hook_a][:256]
s = c.stitch.read(fit)
assert np.allclose(c.stitch.apply(fit, x, "up"), x @ s["P_up"] + s["b_up"], atol=1e-3)

# %% Spliced next-token loss (the paper's Table 1)
rows = c.activations.read(test_a, names=["token_ids"])["token_ids"].reshape(-1, args.context)
splice = c.stitch.evaluate_splice(args.small, args.large, fit, layer_a=args.layer_a, layer_b=args.layer_b,
                                  token_ids=rows, max_rows=min(64, len(rows)))
for r in splice.rows:
    print(f"  {r.run:8} CE {r.ce:.3f} (clean {r.clean_ce:.3f}, mean-ablated {r.mean_ablation_ce:.3f}; loss recovered {r.loss_recovered:.3f})")

# %% An SAE on A, and its transfer to B through the stitch
width = args.width_multiple * b.width
settings = dict(architecture="topk", d_sae=width, k=args.k, lr=1e-3, batch_size=1024, seed=1, log_every=5,
                tokens=args.epochs * train.tokens)
sae_a = c.sae.train(train_a, hook=hook_a, eval_activation_set=test_a, **settings).watch().sae
transferred = c.sae.transfer(sae_a, fit)
print(f"SAE on A {sae_a.ref.id}: width {width}, held-out FVU {sae_a.metrics.get('heldout_fvu', float('nan')):.3f}; "
      f"transferred {transferred.ref.id} reads {transferred.model} {transferred.hook}")

# %% Evaluate: source on A, zero-shot transfer on B, a random SAE's floor (the paper's Table 2)
for label, model, sae, seed in (("source", args.small, sae_a, None), ("zero-shot", args.large, transferred, None),
                                ("random", args.large, transferred, width)):
    e = c.eval.evaluate_sae(model, sae, rows, random_seed=seed)
    print(f"  {label:9} on {model}: FVU {e.fvu:.3f}, L0 {e.l0:.1f}, CE {e.ce_spliced:.3f} vs clean {e.ce_clean:.3f}, "
          f"loss recovered {e.loss_recovered:.3f}")

# %% Warm start: train on B from the transfer, and from scratch, and compare the FLOPs to each explained variance
warm = c.sae.train(train_b, hook=hook_b, init=transferred, eval_activation_set=test_b, **settings).watch()
scratch = c.sae.train(train_b, hook=hook_b, eval_activation_set=test_b, **settings).watch()
cmp = c.sae.compare(scratch, warm)
print(f"final EV: scratch {cmp.scratch_final_explained_variance:.3f}, warm {cmp.warm_final_explained_variance:.3f} "
      f"(measured on {cmp.measured_on}); the warm run's ledger includes the stitch's {cmp.stitch_flops:.3g} FLOPs")
for r in cmp.rows:
    what = f"{r.threshold:.0%} of scratch's final" if r.relative_to_scratch_final else f"EV {r.threshold:.2f}"
    saving = "n/a" if np.isnan(r.relative_saving) else f"{r.relative_saving:+.1%}"
    scratch_at, warm_at = (f"{f:.3g} FLOPs" if f else "never" for f in (r.scratch_flops, r.warm_flops))
    print(f"  {what:24} scratch {scratch_at}, warm {warm_at}: saving {saving}")

# %% A feature of A, steered on B: the SAE's strongest decoder direction, clamped through the transferred SAE
w = c.sae.weights(transferred)
direction = w["W_dec"][int(np.argmax(np.linalg.norm(w["W_dec"], axis=1)))]
prompt = "The jury said it did find that"
plain = c.activations.generate(args.large, prompt, max_new_tokens=12).text
steered = c.activations.generate(args.large, prompt, max_new_tokens=12,
                                 interventions=[Interventions.clamp(hook_b, direction, 8.0)]).text
print(f"B on {prompt!r}: {plain!r}\n  with the feature clamped: {steered!r}")
c.close()
print("ok")
