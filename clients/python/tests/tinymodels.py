"""Two tiny random GPT-NeoX checkpoints of one family for the live tests, written with numpy alone (what
tests/Stitching.Tests/Fixtures/TinyModels.cs makes in C#): "py-tiny-a" (d 32, 2 layers) and "py-tiny-b" (d 48,
3 layers), sharing a GPT-2 style byte-level BPE tokenizer trained here on a few paragraphs of real English."""
from __future__ import annotations

import collections
import json
import os
import re
import struct

import numpy as np

MODELS = {"py-tiny-a": (32, 2), "py-tiny-b": (48, 3)}
VOCAB_SIZE = 320
SPECIAL = "<|endoftext|>"

TEXT = """\
A stitch is an affine map between the residual streams of two language models of one family. Fitted on paired
activations of the same tokens, it carries a sparse autoencoder trained on the small model to the large one, where
training continues from the transferred weights instead of from random ones. The saving is counted in floating
point operations, and the ledger records every phase: extraction, fitting, training and evaluation.
Probes and steering vectors travel the same way. A probe reads a direction of the stream; a steering vector adds
one. Both are vectors in the small model's space, and the stitch moves them into the large model's space, where
they are evaluated against the large model's own probes and directions.
The family is trained on the Brown corpus: fifteen genres of American English prose from the nineteen sixties,
news and fiction, science and humour, each split by document into training, validation and test sets.
"""
# GPT-2's pre-tokenizer regex, in the form Python's re supports (letters / digits approximated by \w classes).
_WORDS = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+""")


def _byte_chars() -> list[str]:
    """GPT-2's byte -> printable character table."""
    printable = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255]
    table, extra = {}, 256
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b], extra = chr(extra), extra + 1
    return [table[b] for b in range(256)]


def train_bpe(text: str, vocab_size: int = VOCAB_SIZE) -> dict:
    """A byte-level BPE: the special token, the 256 byte characters by code point, then the most frequent adjacent
    pair merged (ties: the pair whose strings sort first) until the vocabulary is full; as tokenizer.json."""
    chars = _byte_chars()
    vocab = [SPECIAL] + sorted(chars)
    words = collections.Counter("".join(chars[b] for b in w.encode()) for w in _WORDS.findall(text))
    split = {w: list(w) for w in words}
    merges = []
    while len(vocab) < vocab_size:
        pairs = collections.Counter()
        for w, n in words.items():
            s = split[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        (a, b), _ = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        merges.append(f"{a} {b}")
        vocab.append(a + b)
        for w, s in split.items():
            i, out = 0, []
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            split[w] = out
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": 0, "content": SPECIAL, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True}],
        "normalizer": None, "pre_tokenizer": byte_level, "post_processor": byte_level, "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": {t: i for i, t in enumerate(vocab)}, "merges": merges},
    }


def write_safetensors(path: str, tensors: dict[str, np.ndarray]) -> None:
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, arr in tensors.items():
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob)
        for arr in tensors.values():
            f.write(np.ascontiguousarray(arr, "<f4").tobytes())


def neox_weights(d: int, layers: int, vocab: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t: dict[str, np.ndarray] = {}

    def w(name, scale, *shape):
        t[name] = (rng.standard_normal(shape) * scale).astype(np.float32)

    w("gpt_neox.embed_in.weight", 1.0, vocab, d)
    for layer in range(layers):
        p = f"gpt_neox.layers.{layer}."
        for ln in ("input_layernorm", "post_attention_layernorm"):
            t[p + ln + ".weight"] = np.ones(d, np.float32)
            w(p + ln + ".bias", 0.02, d)
        w(p + "attention.query_key_value.weight", 0.2, 3 * d, d); w(p + "attention.query_key_value.bias", 0.02, 3 * d)
        w(p + "attention.dense.weight", 0.2, d, d); w(p + "attention.dense.bias", 0.02, d)
        w(p + "mlp.dense_h_to_4h.weight", 0.2, 4 * d, d); w(p + "mlp.dense_h_to_4h.bias", 0.02, 4 * d)
        w(p + "mlp.dense_4h_to_h.weight", 0.1, d, 4 * d); w(p + "mlp.dense_4h_to_h.bias", 0.02, d)
    t["gpt_neox.final_layer_norm.weight"] = np.ones(d, np.float32)
    w("gpt_neox.final_layer_norm.bias", 0.02, d)
    w("embed_out.weight", 0.2, vocab, d)
    return t


def write_models(root: str) -> list[str]:
    """Writes every model of MODELS under ``root`` that is not there yet; returns their names."""
    tokenizer = None
    for name, (d, layers) in MODELS.items():
        folder = os.path.join(root, name)
        if os.path.exists(os.path.join(folder, "config.json")):
            continue
        tokenizer = tokenizer or train_bpe(TEXT)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tokenizer, f, ensure_ascii=False)
        config = {"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "hidden_size": d,
                  "num_hidden_layers": layers, "num_attention_heads": 4, "intermediate_size": 4 * d,
                  "vocab_size": VOCAB_SIZE, "max_position_embeddings": 256, "rotary_pct": 0.5, "rotary_emb_base": 10000,
                  "use_parallel_residual": True, "hidden_act": "gelu", "layer_norm_eps": 1e-5,
                  "tie_word_embeddings": False, "bos_token_id": 0, "eos_token_id": 0}
        write_safetensors(os.path.join(folder, "model.safetensors.tmp"), neox_weights(d, layers, VOCAB_SIZE, seed=d))
        os.replace(os.path.join(folder, "model.safetensors.tmp"), os.path.join(folder, "model.safetensors"))
        with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as f:  # last: the catalog keys on it
            json.dump(config, f)
    return list(MODELS)
