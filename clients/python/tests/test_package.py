"""The package itself, no server needed: version from the contracts, committed stubs in step with protos/, imports
that leave sys.path alone, both protobuf backends, tensors, error details, the retry policy."""
from __future__ import annotations

import filecmp
import importlib.metadata
import os
import re
import subprocess
import sys
from concurrent import futures

import grpc
import numpy as np
import pytest

import stitching
from stitching.common.v1 import tensor_pb2

PACKAGE_DIR = os.path.dirname(os.path.abspath(stitching.__file__))
SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))         # clients/python
CONTRACTS = os.path.normpath(os.path.join(SOURCE, "..", "..", "protos"))     # the repository's protos/


def _contracts() -> list[str]:
    if not os.path.isdir(os.path.join(CONTRACTS, "stitching")):
        pytest.skip(f"the contracts are not at {CONTRACTS} (tests run outside the repository)")
    return sorted(os.path.join(r, f) for r, _, fs in os.walk(os.path.join(CONTRACTS, "stitching")) for f in fs if f.endswith(".proto"))


def test_version_is_the_contracts_package_version():
    majors = {re.search(r"^package stitching\.\w+\.v(\d+);", open(p).read(), re.M).group(1) for p in _contracts()}
    assert majors == {stitching.__version__.split(".")[0]}
    assert stitching.CONTRACTS == "v" + majors.pop()


def test_installed_metadata_carries_the_package_version():
    try:
        installed = importlib.metadata.version("stitching-client")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("stitching-client is not installed (running from the source tree)")
    assert installed == stitching.__version__


def test_the_installed_package_is_the_one_under_test():
    if os.environ.get("STITCHING_EXPECT_INSTALLED") != "1":
        pytest.skip("set STITCHING_EXPECT_INSTALLED=1 when the package is pip-installed")
    assert os.path.commonpath([PACKAGE_DIR, SOURCE]) != SOURCE, f"imported {PACKAGE_DIR}, the source tree, not the installed package"
    installed = {str(f) for f in importlib.metadata.files("stitching-client")}
    assert {"stitching/py.typed", "stitching/common/v1/tensor_pb2.py", "stitching/_health/health_pb2_grpc.py"} <= installed


def test_committed_stubs_match_a_fresh_generation(tmp_path):
    _contracts()
    generator = os.path.join(SOURCE, "_build", "genstubs.py")
    python = os.environ.get("PYTHON", "/usr/bin/python3")
    if subprocess.run([python, "-c", "import grpc_tools.protoc"], capture_output=True).returncode != 0:
        pytest.skip(f"{python} has no grpc_tools (Debian: python3-grpc-tools)")
    subprocess.run([python, "-B", generator, str(tmp_path)], check=True, capture_output=True)
    fresh = sorted(os.path.relpath(os.path.join(r, f), tmp_path) for r, _, fs in os.walk(tmp_path) for f in fs)
    roots = {os.path.join(*p.split(os.sep)[:2]) for p in fresh}
    committed = sorted(os.path.relpath(os.path.join(r, f), SOURCE)
                       for root in roots if os.path.isdir(os.path.join(SOURCE, root))
                       for r, _, fs in os.walk(os.path.join(SOURCE, root)) for f in fs if f.endswith(".py"))
    committed += [r for r in roots if os.path.isfile(os.path.join(SOURCE, r))]
    assert sorted(committed) == fresh, "generated files differ from the committed ones: run clients/python/generate.sh"
    drifted = [p for p in fresh if not filecmp.cmp(os.path.join(tmp_path, p), os.path.join(SOURCE, p), shallow=False)]
    assert not drifted, f"stubs out of date with protos/: {drifted}; run clients/python/generate.sh"
    if os.path.normpath(PACKAGE_DIR) != os.path.join(SOURCE, "stitching"):  # an installed copy carries the same bytes
        stale = [p for p in fresh if not os.path.isfile(os.path.join(os.path.dirname(PACKAGE_DIR), p))
                 or not filecmp.cmp(os.path.join(tmp_path, p), os.path.join(os.path.dirname(PACKAGE_DIR), p), shallow=False)]
        assert not stale, f"the installed package at {PACKAGE_DIR} has other stubs: {stale}; reinstall it"


def test_import_leaves_sys_path_alone_and_loads_on_either_protobuf_backend():
    script = ("import sys; before = list(sys.path); import stitching; "
              "from stitching.sae.v1 import sae_pb2; from stitching.eval.v1 import experiment_pb2_grpc; "
              "assert sys.path == before, set(sys.path) ^ set(before); "
              "from google.protobuf.internal import api_implementation as a; print(a.Type(), sae_pb2.TrainRequest(hook='h').hook)")
    env = dict(os.environ)
    for backend in ("python", None):
        if backend:
            env["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = backend
        else:
            env.pop("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", None)
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=os.path.dirname(PACKAGE_DIR))
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip().endswith(" h")


def test_package_is_typed():
    assert os.path.isfile(os.path.join(PACKAGE_DIR, "py.typed"))


def test_tensors_round_trip_every_dtype_and_bf16_widens_exactly():
    for arr in (np.arange(6, dtype=np.float32).reshape(2, 3), np.float16([1.5]), np.float64(2.25), np.int32([-7]),
                np.int64([2 ** 40]), np.uint8([255]), np.array([True, False])):
        back = stitching.to_numpy(stitching.tensor("t", arr))
        assert back.dtype == np.asarray(arr).dtype.newbyteorder("<") and np.array_equal(back, arr)
    bits = np.array([0x3F80, 0xC000], np.uint16)  # bfloat16 1.0 and -2.0
    t = stitching.tensor("b", bits, bf16=True)
    assert t.dtype == tensor_pb2.DTYPE_BF16
    from stitching.tensors import assemble, chunks
    assert np.array_equal(assemble(chunks({"b": bits}, bf16=True), bf16="float32")["b"], [1.0, -2.0])
    with pytest.raises(stitching.StitchingError, match="bf16=True"):
        stitching.tensor("u", bits)


class _FlakyHealth(grpc.GenericRpcHandler):
    """grpc.health.v1.Health/Check answering UNAVAILABLE ``failures`` times, then SERVING; for service "bad" it
    fails INVALID_ARGUMENT with a google.rpc.BadRequest in the trailer, as the stitching server does."""

    def __init__(self, failures: int):
        self.calls, self.failures = 0, failures

    def service(self, details):
        if details.method != "/grpc.health.v1.Health/Check":
            return None
        from stitching._channel import health_pb2

        def check(request, context):
            self.calls += 1
            if request.service == "bad":
                from google.protobuf import any_pb2
                from stitching._rpc import status_pb2
                bad = status_pb2.BadRequest(field_violations=[status_pb2.BadRequest.FieldViolation(field="service", description="no such service")])
                detail = any_pb2.Any(type_url="type.googleapis.com/google.rpc.BadRequest", value=bad.SerializeToString())
                status = status_pb2.Status(code=3, message="service: no such service", details=[detail])
                context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "service: no such service")
            if self.calls <= self.failures:
                context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
            return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

        return grpc.unary_unary_rpc_method_handler(check, request_deserializer=health_pb2.HealthCheckRequest.FromString,
                                                   response_serializer=health_pb2.HealthCheckResponse.SerializeToString)


@pytest.fixture
def flaky_server():
    handler = _FlakyHealth(failures=2)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield handler, f"127.0.0.1:{port}"
    server.stop(None)


def test_unavailable_is_retried_by_the_channel_and_surfaces_when_retries_run_out(flaky_server):
    handler, address = flaky_server
    with stitching.Client(address, timeout=10) as c:  # default: 5 attempts
        assert c.health().status == "SERVING"  # ServerInfo is UNIMPLEMENTED here: the verdict alone
    assert handler.calls == 3
    handler.calls = 0
    with stitching.Client(address, timeout=10, retries=1) as c:
        with pytest.raises(stitching.Unavailable) as e:
            c.health()
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE and isinstance(e.value, grpc.RpcError)
    assert handler.calls == 1


def test_field_violations_are_read_from_the_status_details_trailer(flaky_server):
    _, address = flaky_server
    with stitching.Client(address, timeout=10) as c:
        with pytest.raises(stitching.InvalidArgument) as e:
            c.health("bad")
    assert e.value.field == "service"
    assert e.value.violations == (stitching.FieldViolation("service", "no such service"),)
    assert "INVALID_ARGUMENT (field service)" in str(e.value)


def test_an_address_with_nothing_listening_fails_unavailable():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with stitching.Client(f"http://127.0.0.1:{port}", timeout=5, retries=1) as c:
        with pytest.raises(stitching.Unavailable):
            c.artifacts()


def _snapshots():
    from types import SimpleNamespace
    from stitching.common.v1 import operations_pb2
    for step, state in ((1, "RUNNING"), (2, "RUNNING"), (2, "SUCCEEDED")):
        progress = operations_pb2.OperationProgress(step=step, total_steps=2, phase="train", metrics={"fvu": 0.5})
        yield SimpleNamespace(id="op-1", kind="sae.train", state=state, progress=progress, done=state == "SUCCEEDED")


def test_progress_prints_plain_lines(capsys):
    from stitching import _progress
    _progress.show(_snapshots(), "plain")
    err = capsys.readouterr().err
    assert "op-1 sae.train RUNNING: train  step 1/2" in err and "SUCCEEDED after" in err and "fvu=0.5" in err


def test_progress_draws_a_tqdm_bar_when_tqdm_is_installed(monkeypatch):
    import types
    from stitching import _progress
    bars = []

    class FakeBar:
        def __init__(self, total=None, **kw):
            self.total, self.n, self.postfix, self.closed = total, 0, "", False
            bars.append(self)

        def set_postfix_str(self, s, refresh=True):
            self.postfix = s

        def refresh(self):
            pass

        def close(self):
            self.closed = True

    auto = types.ModuleType("tqdm.auto")
    auto.tqdm = FakeBar
    monkeypatch.setitem(sys.modules, "tqdm", types.ModuleType("tqdm"))
    monkeypatch.setitem(sys.modules, "tqdm.auto", auto)
    _progress.show(_snapshots(), True)
    [bar] = bars
    assert (bar.total, bar.n, bar.closed) == (2, 2, True) and bar.postfix.startswith("SUCCEEDED")
