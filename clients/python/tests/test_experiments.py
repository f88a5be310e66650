"""client.experiments against a live server: the dry run of an experiment on the tiny models."""
from __future__ import annotations

import pytest

import stitching
from conftest import DOCUMENTS, MODEL_A, MODEL_B


def tiny_spec() -> dict:
    return {"name": "pytest", "model_a": {"model": MODEL_A}, "model_b": {"model": MODEL_B},
            "train_corpus": {"texts": {"texts": DOCUMENTS}}, "test_corpus": {"texts": {"texts": DOCUMENTS[:10]}},
            "context": 16, "train_tokens": 2048, "test_rows": 8, "splice_rows": 4,
            "layers": {"layer_a": 1, "layer_b": 1}, "stitch": {"adam_steps": -1},
            "sae": {"widths": [64], "k": 4, "batch_size": 64, "epochs": 1}, "evaluations": ["splice"]}


def test_plan_resolves_the_models_and_costs_the_stages(client, models, tmp_path):
    plan = client.experiments.plan(tiny_spec())
    assert not plan.problems, plan.problems
    assert {m.model: m.availability for m in plan.models} == {MODEL_A: "store", MODEL_B: "store"}
    assert (plan.layer_a, plan.layer_b) == (1, 1) and plan.flops > 0 and plan.stages
    path = tmp_path / "spec.json"
    import json
    path.write_text(json.dumps({"experiment": tiny_spec()}))
    assert client.experiments.plan(str(path)).spec_hash == plan.spec_hash  # a file, with a sweep's wrapper


def test_a_spec_without_model_b_names_the_field(client):
    spec = tiny_spec()
    del spec["model_b"]
    with pytest.raises(stitching.InvalidArgument) as e:
        client.experiments.plan(spec)
    assert e.value.field == "spec.model_b.model"


def test_run_reads_the_report_and_a_second_run_reuses_every_stage(client, models):
    seen = []
    run = client.experiments.run(tiny_spec(), progress=seen.append)
    assert run.operation.state == "SUCCEEDED" and seen and seen[-1].done
    names = [s.name for s in run.result.stages]
    assert names[:3] == ["extract.train", "extract.test", "fit.lstsq"] and "splice" in names and names[-1] == "report"
    assert run.markdown.startswith("# Stitching report") and run.report["pair"]["layer_a"] == 1
    assert run.result.ledger.total_flops > 0
    again = client.experiments.start(tiny_spec()).wait(timeout=120)
    assert all(s.reused for s in again.stages) and again.report == run.result.report
