#!/usr/bin/env python3
"""Writes the scratch recipe's initial SAE as SAELens folders, for a random-SAE floor in `stitch eval sae`.

    /usr/bin/python3 docs/scripts/random_sae.py STORE/activation-set/AS_ID HOOK K OUT_DIR WIDTH [WIDTH ...]

b_dec = mean of the set's non-special rows at HOOK, decoder rows random unit vectors (numpy seed = width),
encoder = decoder^T, b_enc = 0, TopK k, no input scaling (normalize_activations "none"). Each width goes to OUT_DIR/rWIDTH.
"""
import glob
import json
import os
import struct
import sys

import numpy as np


def read(path, names):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name in names:
        e = header[name]
        b, end = e["data_offsets"]
        dt = {"F32": "<f4", "U8": "u1", "I32": "<i4"}[e["dtype"]]
        out[name] = np.frombuffer(data[b:end], dtype=dt).reshape(e["shape"])
    return out


def write(path, tensors):
    header, blobs, offset = {}, [], 0
    for k, v in tensors.items():
        b = np.ascontiguousarray(v, dtype="<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    set_dir, hook, k, out, widths = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], [int(w) for w in sys.argv[5:]]
    xs = []
    for f in sorted(glob.glob(os.path.join(set_dir, "shard-*.safetensors"))):
        t = read(f, [hook, "special"])
        xs.append(t[hook][t["special"] == 0].astype(np.float64))
    mean = np.concatenate(xs).mean(0)
    d = mean.shape[0]
    for m in widths:
        rng = np.random.default_rng(m)
        w_dec = rng.standard_normal((m, d))
        w_dec /= np.linalg.norm(w_dec, axis=1, keepdims=True)
        folder = os.path.join(out, f"r{m}")
        os.makedirs(folder, exist_ok=False)
        write(os.path.join(folder, "sae_weights.safetensors"), {"W_enc": w_dec.T.copy(), "b_enc": np.zeros(m), "W_dec": w_dec, "b_dec": mean})
        json.dump({"architecture": "topk", "d_in": d, "d_sae": m, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": True,
                   "normalize_activations": "none", "reshape_activations": "none",
                   "metadata": {"model_name": "", "hook_name": hook}, "k": k}, open(os.path.join(folder, "cfg.json"), "w"))
        print(folder)


if __name__ == "__main__":
    main()
