"""Fixtures for the live suite: a Client on $STITCHING_ADDRESS, tiny models in the server's model store, and the
artifacts every sub-API's tests share (one paired extraction, one stitch, one SAE), made once per session.

    STITCHING_ADDRESS=127.0.0.1:50051 python3 -m pytest clients/python/tests

Environment:
    STITCHING_ADDRESS      host:port (or http://host:port) of a running `stitch serve`; without it the live tests skip
    STITCHING_MODELS_ROOT  the server's model store (Stitching__ModelsRoot), where the tiny models are written;
                           default: {store_root}/models from ServerInfo, when the server runs on this machine
    STITCHING_ALLOWED_ROOT a folder under the server's Stitching__AllowedRoots (SAE export/import tests); optional
    STITCHING_REQUIRE_LIVE=1  fail instead of skipping when the live prerequisites are missing
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # tinymodels, beside this file
try:
    import stitching  # noqa: F401  the installed package
except ImportError:  # not installed: test the source tree
    sys.path.insert(0, os.path.dirname(HERE))
import tinymodels  # noqa: E402

HOOK_A = "blocks.1.hook_resid_pre"
HOOK_B = "blocks.1.hook_resid_pre"
CONTEXT = 16
MODEL_A, MODEL_B = tinymodels.MODELS  # "py-tiny-a" (d 32, 2 layers), "py-tiny-b" (d 48, 3 layers)

# Documents: the tokenizer's paragraphs, sentence by sentence, a few times over (some thousands of tokens).
DOCUMENTS = [s.strip().replace("\n", " ") + "." for s in tinymodels.TEXT.split(".") if len(s.split()) > 3] * 6


def _missing(reason: str):
    if os.environ.get("STITCHING_REQUIRE_LIVE") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def address() -> str:
    value = os.environ.get("STITCHING_ADDRESS")
    if not value:
        _missing("set STITCHING_ADDRESS=host:port of a running `stitch serve` to run the live tests")
    return value


@pytest.fixture(scope="session")
def client(address):
    from stitching import Client
    with Client(address, timeout=120) as c:
        yield c


@pytest.fixture(scope="session")
def models(client) -> tuple[str, str]:
    """The tiny models, written into the server's model store (the catalog is read on every request)."""
    root = os.environ.get("STITCHING_MODELS_ROOT")
    if not root:
        store = client.server_info().store_root
        if not os.path.isdir(store):
            _missing("set STITCHING_MODELS_ROOT to the server's model store (Stitching__ModelsRoot)")
        root = os.path.join(store, "models")
    os.makedirs(root, exist_ok=True)
    tinymodels.write_models(root)
    names = {m.name for m in client.activations.models()}
    if not {MODEL_A, MODEL_B} <= names:
        _missing(f"the server does not list the tiny models written to {root} (it lists {sorted(names)}); "
                 "set STITCHING_MODELS_ROOT to its Stitching__ModelsRoot")
    return MODEL_A, MODEL_B


@pytest.fixture(scope="session")
def extraction(client, models):
    """One paired extraction of both models over DOCUMENTS (rows of CONTEXT tokens, small shards)."""
    return client.activations.extract({MODEL_A: [HOOK_A, "blocks.0.hook_resid_post"], MODEL_B: [HOOK_B, "blocks.2.hook_resid_pre"]},
                                      texts=DOCUMENTS, context=CONTEXT, shard_tokens=256, batch_size=8).wait(timeout=120)


@pytest.fixture(scope="session")
def fit(client, extraction):
    """The lstsq stitch between HOOK_A of A and HOOK_B of B."""
    a, b = extraction.activation_sets
    return client.stitch.fit((a, HOOK_A), (b, HOOK_B)).wait(timeout=120)


@pytest.fixture(scope="session")
def sae_a(client, extraction):
    """A TopK SAE (64 latents, k 4) trained on HOOK_A of A."""
    return client.sae.train(extraction.activation_sets[0], hook=HOOK_A, d_sae=64, k=4, batch_size=64, seed=3,
                            log_every=2).wait(timeout=120)


@pytest.fixture(scope="session")
def transferred(client, sae_a, fit):
    return client.sae.transfer(sae_a, fit, model=MODEL_B, hook=HOOK_B)


@pytest.fixture(scope="session")
def rows(client, extraction) -> np.ndarray:
    """Token rows [8, CONTEXT] of the extraction, for evaluations."""
    ids = client.activations.read(extraction.activation_sets[0], names=["token_ids"])["token_ids"]
    return ids.reshape(-1, CONTEXT)[:8]


@pytest.fixture(scope="session")
def activations_a(client, extraction) -> dict[str, np.ndarray]:
    return client.activations.read(extraction.activation_sets[0])


@pytest.fixture(scope="session")
def activations_b(client, extraction) -> dict[str, np.ndarray]:
    return client.activations.read(extraction.activation_sets[1])
