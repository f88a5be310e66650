"""PyTorch's float32 n x n matmul rate under Debian's python3-torch (OpenBLAS when libopenblas0-pthread is
installed): the baseline of the suite's matmul figure. Prints one JSON line."""
import json, sys, time
try:
    import torch
except ImportError:
    print(json.dumps({"error": "no_torch"})); sys.exit(0)
n, threads, repeat = (int(a) for a in sys.argv[1:4])
torch.set_num_threads(threads)
a = torch.randn(n, n); b = torch.randn(n, n); a @ b
best = float("inf")
for _ in range(repeat):
    t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)
blas = sorted({l.split("/")[-1].strip() for l in open("/proc/self/maps") if "blas" in l.lower() or "mkl" in l.lower()})
print(json.dumps({"torch_version": torch.__version__, "gflops": 2 * n ** 3 / best / 1e9, "best_s": best, "blas": blas}))
