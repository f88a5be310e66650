"""The flat methods of the first client (client.forward, client.upload_tensors, client.wait(id), ...), kept so
that scripts written against it run unchanged. Each is a thin call into the typed sub-APIs; new code should use
those (client.activations.forward, client.artifacts.upload, client.operations.get(id).wait(), ...)."""
from __future__ import annotations

from typing import Iterator

from .activations.v1 import activations_pb2
from .common.v1 import artifacts_pb2, operations_pb2
from .errors import StitchingError
from .operations import Operation


class FlatMethods:
    """Mixed into Client; needs self.artifacts, self.activations, self.eval, self.stub, self.timeout."""

    # --- artifacts and operations -------------------------------------------------------------------------------
    def artifact(self, kind: str, id: str) -> artifacts_pb2.ArtifactManifest:
        return self.artifacts.get(kind, id)

    def upload_tensors(self, kind, id, tensors, file=None, metadata=None, *, bf16=False, timeout=None) -> artifacts_pb2.ArtifactManifest:
        return self.artifacts.upload(kind, id, tensors, file, metadata, bf16=bf16, timeout=timeout)

    def read_tensors(self, kind, id, names=None, file=None, *, bf16="uint16", timeout=None) -> dict:
        return self.artifacts.read_tensors(kind, id, names, file, bf16=bf16, timeout=timeout)

    def read_file(self, kind: str, id: str, file: str) -> bytes:
        return self.artifacts.read_file(kind, id, file)

    def operation(self, id: str) -> operations_pb2.Operation:
        """The record of an operation (client.operations.get(id) gives the Operation object)."""
        return self.operations.get(id).record

    def watch(self, id: str) -> Iterator[operations_pb2.Operation]:
        """Yields the record on every change; the last one is final."""
        yield from self.stub.operations.WatchOperation(operations_pb2.WatchOperationRequest(id=id))

    def wait(self, id: str) -> operations_pb2.Operation:
        """Blocks until the operation ends; returns its final record (failures are not raised)."""
        op = self.operations.get(id)
        for _ in op.updates():
            pass
        return op.record

    def cancel(self, id: str) -> operations_pb2.Operation:
        return self.operations.cancel(id).record

    # --- activations --------------------------------------------------------------------------------------------
    def models(self) -> list[activations_pb2.ModelInfo]:
        return self.activations.models()

    def describe(self, model) -> activations_pb2.ModelInfo:
        return self.activations.describe(model)

    def load(self, model, *, dtype: str = "", allow_download: bool = False, timeout=None) -> activations_pb2.ModelInfo:
        return self.activations.load(model, dtype=dtype, allow_download=allow_download, timeout=timeout)

    def tokenize(self, model, texts, bos=None) -> list[list[int]]:
        """Token ids per text (client.activations.tokenize gives tokens, offsets and special flags too)."""
        return [t.ids.tolist() for t in self.activations.tokenize(model, texts, bos=bos)]

    def detokenize(self, model, ids, skip_special_tokens: bool = False) -> str:
        return self.activations.detokenize(model, ids, skip_special_tokens=skip_special_tokens)

    def forward(self, model, token_ids=None, **kwargs) -> dict:
        """client.activations.forward(...).as_dict(): {hook: array, "logits", "mean_loss", ...}."""
        return self.activations.forward(model, token_ids, **kwargs).as_dict()

    def generate(self, model, prompt: str = "", **kwargs):
        return self.activations.generate(model, prompt, **kwargs)

    def extract(self, models, *, wait: bool = True, **kwargs):
        """With wait=True blocks and returns the ExtractResult, else the operation record."""
        op: Operation = self.activations.extract(models, **kwargs)
        if not wait:
            return op.record
        try:
            return op.wait()
        except StitchingError as e:
            raise StitchingError(f"extraction {op.id} ended {op.state}: {e}") from e

    def read_activations(self, activation_set, names=None, shards=()) -> dict:
        return self.activations.read(activation_set, names, shards)

    # --- eval ---------------------------------------------------------------------------------------------------
    def evaluate_sae(self, model, sae, token_ids, *, hook: str = "", batch_size: int = 0, timeout=None):
        return self.eval.evaluate_sae(model, sae, token_ids, hook=hook, batch_size=batch_size, timeout=timeout)
