#!/usr/bin/python3
"""PyTorch eager baseline for the extraction benchmark (run by Stitching.Benchmarks; prints one JSON line).

    /usr/bin/python3 baseline_extract.py CHECKPOINT_DIR INPUTS --layers-read L --threads N
                                         [--warmup W] [--repeat R] [--matmul-size 2048]

CHECKPOINT_DIR holds the GPT-2 config.json + model.safetensors the benchmark wrote; INPUTS is a
safetensors file with `ids` (I64 [B, T]) and `ours` (F32 [B, T, d]: our blocks.L.hook_resid_pre).
Weights are read with numpy. The forward mirrors Hugging Face's eager GPT-2 (Conv1D x @ W + b with
W stored [in, out], pre-LN blocks, gelu_new, causal softmax attention scaled by 1/sqrt(head_dim)) in
float32 under torch.no_grad at torch.set_num_threads(N), and stops after block L-1: its output is
blocks.L.hook_resid_pre. Reports tokens/s (best and median of R after W warm-ups), the same 2048
matmul rate the C# side measures, which BLAS torch actually loaded, and the error against `ours`.
"""
import argparse, json, math, os, struct, sys, time

import numpy as np

NP_DTYPES = {'F32': np.float32, 'I64': np.int64, 'F64': np.float64}


def read_safetensors(path):
    """name -> numpy array (F32, I64, F64), via a read-only memory map."""
    with open(path, 'rb') as f:
        (n,) = struct.unpack('<Q', f.read(8))
        header = json.loads(f.read(n))
    raw = np.memmap(path, dtype=np.uint8, mode='r', offset=8 + n)
    out = {}
    for name, e in header.items():
        if name == '__metadata__':
            continue
        lo, hi = e['data_offsets']
        out[name] = np.frombuffer(raw[lo:hi], dtype=NP_DTYPES[e['dtype']]).reshape(e['shape'])
    return out


def loaded_blas():
    """The BLAS / LAPACK shared objects mapped into this process (after torch has run a matmul)."""
    libs = set()
    with open('/proc/self/maps') as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ''
            base = os.path.basename(path)
            if any(k in base for k in ('blas', 'mkl', 'lapack', 'blis', 'atlas')):
                libs.add(os.path.realpath(path))
    return sorted(libs)


def blas_kind(libs):
    """'OpenBLAS', 'MKL', 'BLIS', or 'reference' (Debian's netlib libblas, ~20x slower) from the mapped libraries."""
    for key, kind in (('openblas', 'OpenBLAS'), ('mkl', 'MKL'), ('blis', 'BLIS')):
        if any(key in os.path.basename(p).lower() or f'/{key}' in p.lower() for p in libs):
            return kind
    return 'reference'


def gelu_new(x, torch):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def build_forward(torch, cfg, w, layers_read):
    """A closure ids -> blocks.{layers_read}.hook_resid_pre, Hugging Face GPT-2 eager semantics."""
    d, heads, eps = cfg['n_embd'], cfg['n_head'], cfg.get('layer_norm_epsilon', 1e-5)
    hd = d // heads
    F = torch.nn.functional

    def t(name):
        return torch.from_numpy(np.array(w[name], dtype=np.float32))

    wte, wpe = t('wte.weight'), t('wpe.weight')
    blocks = []
    for l in range(layers_read):
        p = f'h.{l}.'
        blocks.append({k: t(p + k) for k in (
            'ln_1.weight', 'ln_1.bias', 'attn.c_attn.weight', 'attn.c_attn.bias', 'attn.c_proj.weight',
            'attn.c_proj.bias', 'ln_2.weight', 'ln_2.bias', 'mlp.c_fc.weight', 'mlp.c_fc.bias',
            'mlp.c_proj.weight', 'mlp.c_proj.bias')})

    def conv1d(x, weight, bias):
        # HF Conv1D: addmm(bias, x.view(-1, in), weight) with weight stored [in, out]
        return torch.addmm(bias, x.reshape(-1, x.shape[-1]), weight).view(*x.shape[:-1], weight.shape[1])

    def forward(ids):
        b, tlen = ids.shape
        x = wte[ids] + wpe[torch.arange(tlen)]
        causal = torch.ones(tlen, tlen, dtype=torch.bool).tril()
        neg = torch.tensor(torch.finfo(torch.float32).min)
        for blk in blocks:
            h = F.layer_norm(x, (d,), blk['ln_1.weight'], blk['ln_1.bias'], eps)
            q, k, v = conv1d(h, blk['attn.c_attn.weight'], blk['attn.c_attn.bias']).split(d, dim=2)
            q, k, v = (z.view(b, tlen, heads, hd).transpose(1, 2) for z in (q, k, v))
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd)
            probs = torch.softmax(torch.where(causal, scores, neg), dim=-1)
            y = torch.matmul(probs, v).transpose(1, 2).reshape(b, tlen, d)
            x = x + conv1d(y, blk['attn.c_proj.weight'], blk['attn.c_proj.bias'])
            h = F.layer_norm(x, (d,), blk['ln_2.weight'], blk['ln_2.bias'], eps)
            h = gelu_new(conv1d(h, blk['mlp.c_fc.weight'], blk['mlp.c_fc.bias']), torch)
            x = x + conv1d(h, blk['mlp.c_proj.weight'], blk['mlp.c_proj.bias'])
        return x

    return forward


def timed(fn, warmup, repeat):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('checkpoint')
    ap.add_argument('inputs')
    ap.add_argument('--layers-read', type=int, required=True)
    ap.add_argument('--threads', type=int, required=True)
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--repeat', type=int, default=5)
    ap.add_argument('--matmul-size', type=int, default=2048)
    a = ap.parse_args()
    try:
        import torch
    except ImportError as e:
        print(json.dumps({'error': 'no_torch', 'message': str(e)}))
        return 3
    torch.set_num_threads(a.threads)
    with open(os.path.join(a.checkpoint, 'config.json')) as f:
        cfg = json.load(f)
    inputs = read_safetensors(a.inputs)
    ids = torch.from_numpy(np.array(inputs['ids']))
    ours = np.asarray(inputs['ours'], dtype=np.float32)
    forward = build_forward(torch, cfg, read_safetensors(os.path.join(a.checkpoint, 'model.safetensors')), a.layers_read)

    with torch.no_grad():
        n = a.matmul_size
        ma, mb = torch.randn(n, n), torch.randn(n, n)
        mm_best, _ = timed(lambda: torch.matmul(ma, mb), 1, 10)
        best, median = timed(lambda: forward(ids), a.warmup, a.repeat)
        theirs = forward(ids).numpy()

    blas = loaded_blas()
    diff = np.abs(theirs.astype(np.float64) - ours.astype(np.float64))
    tokens = ids.numel()
    print(json.dumps({
        'torch_version': torch.__version__,
        'threads': torch.get_num_threads(),
        'blas': blas_kind(blas),
        'blas_libraries': blas,
        'matmul_gflops': 2.0 * n ** 3 / mm_best / 1e9,
        'best_s': best, 'median_s': median,
        'tokens_per_s_best': tokens / best, 'tokens_per_s_median': tokens / median,
        'max_abs_error': float(diff.max()),
        'max_rel_error': float(diff.max() / np.abs(theirs).max()),
    }))
    return 0


if __name__ == '__main__':
    sys.exit(main())
