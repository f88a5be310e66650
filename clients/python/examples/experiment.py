"""Runs an experiment spec (a JSON file) on a server and prints what its report says.

usage: python3 experiment.py HOST:PORT SPEC.json
"""
import sys

sys.path.insert(0, __file__.rsplit("/examples/", 1)[0])  # the source tree, when not installed
from stitching import Client  # noqa: E402

address, spec = sys.argv[1], sys.argv[2]
with Client(address, timeout=60) as client:
    plan = client.experiments.plan(spec)
    print(f"plan {plan.spec_hash[:12]}: {len(plan.stages)} stages, {plan.flops:.3e} FLOPs, problems {len(plan.problems)}")
    run = client.experiments.run(spec, progress=True)
    r = run.report
    print(f"experiment {run.operation.id}: {len(run.result.stages)} stages, report {run.result.report.id}")
    print(f"layers {r['pair']['layer_a']} -> {r['pair']['layer_b']}")
    for sae in r["sae"]:
        print(f"sae width {sae['width']} source_fvu {sae['source_fvu']!r} zero_shot_fvu {sae['zero_shot_fvu']!r}")
    print(f"ledger {run.result.ledger.total_flops!r}")
    assert run.markdown.startswith("# Stitching report"), run.markdown[:80]
print("ok")
