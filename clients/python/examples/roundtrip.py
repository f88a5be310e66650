#!/usr/bin/env python3
"""Uploads tensors of several dtypes to a stitching server, reads them back and compares them.

    python3 examples/roundtrip.py 127.0.0.1:50051
"""
import os
import sys
import uuid

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # the source tree, when not installed
from stitching import Client  # noqa: E402


def main() -> int:
    address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"
    rng = np.random.default_rng(0)
    tensors = {
        "big_f32": rng.standard_normal((1024, 777), dtype=np.float32),  # ~3 MiB: several upload chunks
        "f16": rng.standard_normal((3, 5)).astype(np.float16),
        "f64": rng.standard_normal(7),
        "i32": rng.integers(-2**31, 2**31 - 1, (2, 2, 2), dtype=np.int32),
        "i64": rng.integers(-2**62, 2**62, 5, dtype=np.int64),
        "u8": rng.integers(0, 256, 16, dtype=np.uint8),
        "bf16": rng.integers(0, 2**16, (4, 4), dtype=np.uint16),  # raw bfloat16 bit patterns
        "scalar": np.array(42.0, dtype=np.float32),
    }
    id = f"pyclient-{uuid.uuid4().hex[:12]}"
    with Client(address) as client:
        h = client.health()
        print(f"health {h.status} {h.checks}")
        manifest = client.upload_tensors("tensors", id, tensors, metadata={"source": "roundtrip.py"}, bf16={"bf16"})
        print(f"uploaded tensors/{id}: " + ", ".join(f"{f.name} {f.size_bytes} B" for f in manifest.files))
        back = client.read_tensors("tensors", id)
        only = client.read_tensors("tensors", id, names=["i64"])
        failed = list(only) != ["i64"] or not np.array_equal(only["i64"], tensors["i64"])
        for name, want in tensors.items():
            got = back.get(name)
            same = got is not None and got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)
            failed |= not same
            print(f"{name:8} {str(want.dtype):8} {str(want.shape):12} {'ok' if same else 'MISMATCH'}")
    if failed or set(back) != set(tensors):
        print("mismatch", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
