"""PyTorch eager baseline of one TopK SAE training step (the algorithm of services/sae SaeTrainer):
pre = x W_enc + b_enc, keep top-k ReLU, x_hat = f W_dec + b_dec, loss = mean_t ||x - x_hat||^2, backward,
decoder-row gradient projection, Adam, decoder rows renormalised. Prints one JSON line."""
import json, statistics, sys, time
try:
    import torch
except ImportError:
    print(json.dumps({"error": "no_torch"})); sys.exit(0)

d, m, k, batch, threads, warmup, repeat = (int(a) for a in sys.argv[1:8])
torch.set_num_threads(threads)
g = torch.Generator().manual_seed(0)
w_dec = torch.randn(m, d, generator=g); w_dec /= w_dec.norm(dim=1, keepdim=True)
w_dec.requires_grad_(True)
w_enc = w_dec.detach().t().clone().requires_grad_(True)
b_enc = torch.zeros(m, requires_grad=True)
b_dec = torch.zeros(d, requires_grad=True)
opt = torch.optim.Adam([w_enc, b_enc, w_dec, b_dec], lr=1e-4)
x = torch.randn(batch, d, generator=g)

def step():
    pre = x @ w_enc + b_enc
    vals, idx = pre.topk(k, dim=-1)
    f = torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals))
    x_hat = f @ w_dec + b_dec
    loss = (x_hat - x).pow(2).sum(-1).mean()
    opt.zero_grad(set_to_none=False)
    loss.backward()
    with torch.no_grad():
        w_dec.grad -= (w_dec.grad * w_dec).sum(1, keepdim=True) * w_dec
    opt.step()
    with torch.no_grad():
        w_dec.div_(w_dec.norm(dim=1, keepdim=True))

for _ in range(warmup): step()
times = []
for _ in range(repeat):
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
a = torch.randn(2048, 2048); b = torch.randn(2048, 2048); a @ b
mm = min((lambda: (lambda t0: (a @ b, time.perf_counter() - t0)[1])(time.perf_counter()))() for _ in range(5))
print(json.dumps({"torch_version": torch.__version__, "best_s": min(times), "median_s": statistics.median(times),
                  "tokens_per_s_best": batch / min(times), "matmul_gflops": 2 * 2048 ** 3 / mm / 1e9}))
