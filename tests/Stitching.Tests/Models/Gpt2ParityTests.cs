using Stitching.Core.Safetensors;
using Stitching.Models;
using Stitching.Models.Families;
using Stitching.Tests.Fixtures;
using TorchSharp;

namespace Stitching.Tests.Models;

/// <summary>
/// GPT-2 against an independent float64 numpy implementation of Hugging Face's GPT-2 forward, on a
/// random checkpoint numpy writes in Hugging Face layout (Conv1D [in, out] weights, "transformer."
/// prefix, attention-mask buffers present).
/// </summary>
[Trait("Category", "Integration")]
public class Gpt2ParityTests
{
    private const string Reference = """
import json, struct, sys, os
import numpy as np
out = sys.argv[1]; prefix = sys.argv[2]
rng = np.random.default_rng(3)
L, H, d, V, P = 3, 4, 32, 97, 64
w = {}
def p(name, *shape, scale=0.2): w[name] = (rng.standard_normal(shape) * scale).astype(np.float32)
p('wte.weight', V, d); p('wpe.weight', P, d); p('ln_f.weight', d); p('ln_f.bias', d)
w['ln_f.weight'] += 1
for l in range(L):
    for n in ('ln_1', 'ln_2'):
        p(f'h.{l}.{n}.weight', d); w[f'h.{l}.{n}.weight'] += 1; p(f'h.{l}.{n}.bias', d)
    p(f'h.{l}.attn.c_attn.weight', d, 3 * d); p(f'h.{l}.attn.c_attn.bias', 3 * d)
    p(f'h.{l}.attn.c_proj.weight', d, d); p(f'h.{l}.attn.c_proj.bias', d)
    p(f'h.{l}.mlp.c_fc.weight', d, 4 * d); p(f'h.{l}.mlp.c_fc.bias', 4 * d)
    p(f'h.{l}.mlp.c_proj.weight', 4 * d, d); p(f'h.{l}.mlp.c_proj.bias', d)
buffers = {f'h.{l}.attn.bias': np.tril(np.ones((1, 1, P, P), np.float32)) for l in range(L)}
def save(path, tensors, dtype_of):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {'dtype': dtype_of(a), 'shape': list(a.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header).encode(); h += b' ' * ((8 - len(h) % 8) % 8)
    open(path, 'wb').write(struct.pack('<Q', len(h)) + h + b''.join(blobs))
dt = lambda a: {np.float32: 'F32', np.float64: 'F64', np.int64: 'I64'}[a.dtype.type]
save(os.path.join(out, 'model.safetensors'), {prefix + k: v for k, v in {**w, **buffers}.items()}, dt)
json.dump({'model_type': 'gpt2', 'n_layer': L, 'n_head': H, 'n_embd': d, 'vocab_size': V, 'n_positions': P,
           'layer_norm_epsilon': 1e-5, 'activation_function': 'gelu_new'}, open(os.path.join(out, 'config.json'), 'w'))
# independent float64 forward
W = {k: v.astype(np.float64) for k, v in w.items()}
ids = rng.integers(0, V, (2, 11))
def ln(x, g, b): m = x.mean(-1, keepdims=True); v = ((x - m) ** 2).mean(-1, keepdims=True); return (x - m) / np.sqrt(v + 1e-5) * g + b
gelu = lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
x = W['wte.weight'][ids] + W['wpe.weight'][np.arange(ids.shape[1])]
ref = {'ids': ids.astype(np.int64)}
T, hd = ids.shape[1], d // H
for l in range(L):
    ref[f'blocks.{l}.hook_resid_pre'] = x
    h = ln(x, W[f'h.{l}.ln_1.weight'], W[f'h.{l}.ln_1.bias'])
    qkv = h @ W[f'h.{l}.attn.c_attn.weight'] + W[f'h.{l}.attn.c_attn.bias']
    q, k, v = [z.reshape(2, T, H, hd).transpose(0, 2, 1, 3) for z in np.split(qkv, 3, -1)]
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd) + np.triu(np.full((T, T), -np.inf), 1)
    a = np.exp(s - s.max(-1, keepdims=True)); a /= a.sum(-1, keepdims=True)
    y = (a @ v).transpose(0, 2, 1, 3).reshape(2, T, d) @ W[f'h.{l}.attn.c_proj.weight'] + W[f'h.{l}.attn.c_proj.bias']
    x = x + y
    m = gelu(ln(x, W[f'h.{l}.ln_2.weight'], W[f'h.{l}.ln_2.bias']) @ W[f'h.{l}.mlp.c_fc.weight'] + W[f'h.{l}.mlp.c_fc.bias'])
    x = x + m @ W[f'h.{l}.mlp.c_proj.weight'] + W[f'h.{l}.mlp.c_proj.bias']
ref['logits'] = ln(x, W['ln_f.weight'], W['ln_f.bias']) @ W['wte.weight'].T
save(os.path.join(out, 'reference.safetensors'), ref, dt)
""";

    [Theory]
    [InlineData("")]
    [InlineData("transformer.")]
    public void Resid_pre_of_every_layer_and_logits_match_numpy_float64(string prefix)
    {
        using var dir = new TempDir("gpt2");
        Python.Run(Reference, dir.Path, prefix);
        using var refs = SafetensorsReader.Open(Path.Combine(dir.Path, "reference.safetensors"));
        using var model = Gpt2.Load(Checkpoint.Open(dir.Path));
        using var scope = torch.NewDisposeScope();
        var ids = torch.tensor(ToDoubles(refs, "ids").Select(v => (long)v).ToArray(), [2, 11]);
        var hooks = Enumerable.Range(0, model.Layers).Select(l => new HookPoint(HookSite.ResidPre, l)).ToList();
        var (captured, logits) = model.Forward(ids, hooks, logits: true);
        foreach (var h in hooks) AssertClose(ToDoubles(refs, h.ToString()), captured[h], h.ToString());
        AssertClose(ToDoubles(refs, "logits"), logits!, "logits");
    }

    [Fact]
    public void Extraction_stops_after_the_last_needed_layer()
    {
        using var dir = new TempDir("gpt2");
        Python.Run(Reference, dir.Path, "");
        using var refs = SafetensorsReader.Open(Path.Combine(dir.Path, "reference.safetensors"));
        using var model = Gpt2.Load(Checkpoint.Open(dir.Path));
        using var scope = torch.NewDisposeScope();
        var ids = torch.tensor(ToDoubles(refs, "ids").Select(v => (long)v).ToArray(), [2, 11]);
        var hook = HookPoint.Parse("blocks.1.hook_resid_pre", model.Layers);
        var (captured, logits) = model.Forward(ids, [hook], logits: false);
        Assert.Null(logits);
        AssertClose(ToDoubles(refs, "blocks.1.hook_resid_pre"), captured[hook], "blocks.1.hook_resid_pre");
    }

    private static double[] ToDoubles(SafetensorsReader r, string name)
    {
        var t = r.Read(name);
        return t.DType == Stitching.Core.Tensors.DType.I64
            ? System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(t.Data.Span).ToArray().Select(v => (double)v).ToArray()
            : System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(t.Data.Span).ToArray();
    }

    private static void AssertClose(double[] expected, torch.Tensor actual, string what)
    {
        var got = actual.to(torch.ScalarType.Float64).contiguous().data<double>().ToArray();
        Assert.Equal(expected.Length, got.Length);
        var scale = expected.Max(Math.Abs);
        var maxRel = expected.Zip(got, (e, g) => Math.Abs(e - g) / scale).Max();
        Assert.True(maxRel < 1e-4, $"{what}: max error relative to max |value| is {maxRel:E2}, over 1e-4");
    }
}
