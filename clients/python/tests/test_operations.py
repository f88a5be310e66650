"""Operations against a live server: wait, list / get with typed results, cancel, failures with their status code,
deadlines."""
from __future__ import annotations

import time

import grpc
import pytest

import stitching
from stitching.activations.v1 import activations_pb2
from conftest import HOOK_A


def test_a_finished_operation_is_found_by_id_with_its_typed_result(client, extraction):
    ops = client.operations(kind="activations.extract", state="succeeded")
    assert ops and all(op.state == "SUCCEEDED" for op in ops)
    op = client.operations.get(ops[0].id)
    assert isinstance(op.result, activations_pb2.ExtractResult) and op.done
    assert op.wait() == op.result and stitching.state_name(op) == "SUCCEEDED"
    assert client.wait(op.id).state == op.record.state  # the 0.x form returns the record


def test_cancel_stops_a_long_training_run(client, extraction):
    op = client.sae.train(extraction.activation_sets[0], hook=HOOK_A, d_sae=64, k=4, batch_size=16, tokens=50_000_000)
    for update in op.updates(timeout=60):
        if update.progress.step > 0:
            break
    assert op.cancel().state in ("CANCELLING", "CANCELLED")
    with pytest.raises(stitching.OperationCancelled) as e:
        op.wait(timeout=60)
    assert op.state == "CANCELLED" and e.value.operation is op
    assert e.value.code() == grpc.StatusCode.CANCELLED


def test_a_failed_operation_raises_with_the_recorded_status(client, extraction):
    op = client.sae.train(extraction.activation_sets[0], hook="blocks.9.hook_resid_pre", d_sae=8)  # the set has no such hook
    with pytest.raises(stitching.OperationFailed) as e:
        op.wait(timeout=60)
    assert op.state == "FAILED" and not isinstance(e.value, stitching.OperationCancelled)
    assert e.value.status != grpc.StatusCode.OK and "hook" in e.value.message
    with pytest.raises(stitching.OperationFailed):
        op.result


def test_wait_with_a_deadline_raises_deadline_exceeded_and_leaves_the_job_running(client, extraction):
    op = client.sae.train(extraction.activation_sets[0], hook=HOOK_A, d_sae=64, k=4, batch_size=16, tokens=50_000_000)
    try:
        start = time.monotonic()
        with pytest.raises(stitching.DeadlineExceeded):
            op.wait(timeout=0.5)
        assert time.monotonic() - start < 10 and not op.refresh().done
        with pytest.raises(stitching.StitchingError, match="call wait"):
            op.result
    finally:
        op.cancel()
