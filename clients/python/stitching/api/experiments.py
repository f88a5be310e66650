"""``client.experiments``: the paper's whole method on one model pair as one server operation (docs/experiments.md)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Union

from google.protobuf import json_format

from ..eval.v1 import experiment_pb2 as pb
from ..operations import Operation

if TYPE_CHECKING:
    from ..client import Client

Spec = Union[pb.ExperimentSpec, Mapping[str, Any], str, "os.PathLike[str]"]
"""An ExperimentSpec, a dict in its JSON form (snake_case keys), or a path to a .json file (.yaml with PyYAML)."""


@dataclass
class ExperimentRun:
    """A finished experiment: its operation, its result (stages, FLOP ledger), and its report parsed."""
    operation: Operation[pb.ExperimentResult]
    result: pb.ExperimentResult
    report: dict
    markdown: str


def experiment_spec(spec: Spec) -> pb.ExperimentSpec:
    if isinstance(spec, pb.ExperimentSpec):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        with open(spec, encoding="utf-8") as f:
            text = f.read()
        if str(spec).endswith((".yaml", ".yml")):
            import yaml  # PyYAML (Debian: python3-yaml)
            spec = yaml.safe_load(text)
        else:
            spec = json.loads(text)
        spec = spec.get("experiment", spec)  # a sweep file's base spec
    return json_format.ParseDict(dict(spec), pb.ExperimentSpec())


class ExperimentsApi:
    def __init__(self, client: "Client"):
        self._c = client

    spec = staticmethod(experiment_spec)

    def plan(self, spec: Spec) -> pb.ExperimentPlan:
        """The dry run: models found or missing, layers, FLOPs, activation-cache bytes, peak memory, problems."""
        return self._c.stub.experiments.PlanExperiment(pb.RunExperimentRequest(spec=experiment_spec(spec)), timeout=self._c.timeout)

    def start(self, spec: Spec) -> Operation[pb.ExperimentResult]:
        """Starts (or joins the running twin of) an experiment; returns its operation at once."""
        record = self._c.stub.experiments.RunExperiment(pb.RunExperimentRequest(spec=experiment_spec(spec)), timeout=self._c.timeout)
        return Operation(self._c, record, pb.ExperimentResult)

    def run(self, spec: Spec, *, progress: Union[bool, str, Callable] = False) -> ExperimentRun:
        """Runs an experiment to its end and reads its report. ``progress``: True / "plain" / "tqdm" to show it, or
        a callable given every update. Raises OperationFailed when it fails."""
        op = self.start(spec)
        result = op.watch(progress)
        report = self._c.artifacts.read_json(result.report, file="report.json")
        markdown = self._c.artifacts.read_file(result.report, file="report.md").decode("utf-8")
        return ExperimentRun(op, result, report, markdown)
