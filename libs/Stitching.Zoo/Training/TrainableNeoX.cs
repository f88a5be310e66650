using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using Stitching.Models;
using Stitching.Models.Families;
using Stitching.Models.Runtime;
using TorchSharp;
using static TorchSharp.torch;
using Parameter = TorchSharp.Modules.Parameter;

namespace Stitching.Zoo.Training;

/// <summary>
/// A GPT-NeoX whose parameters carry gradients, stored under the Hugging Face names and shapes
/// (gpt_neox.embed_in.weight, gpt_neox.layers.N.attention.query_key_value.weight, ..., embed_out.weight),
/// so saving is writing the tensors. The forward runs the runtime's own <see cref="NeoXLayer"/>, so a
/// reloaded checkpoint computes the same logits with the same kernels.
/// Initialisation (GPT-NeoX's): weights N(0, 0.02), output projections of each block N(0, 0.02 / sqrt(2 L)),
/// biases 0, LayerNorm weights 1.
/// </summary>
public sealed class TrainableNeoX : IDisposable
{
    private const string P = "gpt_neox.";
    private readonly List<(string Name, Parameter Value)> _named = [];
    private readonly NeoXBlockWeights[] _blocks;
    private readonly Parameter _embed, _lnfW, _lnfB, _unembed;
    private readonly NeoXLayer _layer;

    public TrainableNeoX(NeoXSize size, int vocab, ulong seed)
    {
        Size = size;
        Vocab = vocab;
        var gen = new Generator(seed);
        var d = size.Width;
        var outStd = 0.02 / Math.Sqrt(2.0 * size.Layers);
        Parameter Normal(string name, double std, params long[] shape) => Add(name, randn(shape, generator: gen) * std);
        Parameter Zeros(string name, long n) => Add(name, zeros(n));
        Parameter Ones(string name, long n) => Add(name, ones(n));
        _embed = Normal(P + "embed_in.weight", 0.02, vocab, d);
        _blocks = Enumerable.Range(0, size.Layers).Select(l =>
        {
            var p = $"{P}layers.{l}.";
            return new NeoXBlockWeights(Ones(p + "input_layernorm.weight", d), Zeros(p + "input_layernorm.bias", d),
                Normal(p + "attention.query_key_value.weight", 0.02, 3 * d, d), Zeros(p + "attention.query_key_value.bias", 3 * d),
                Normal(p + "attention.dense.weight", outStd, d, d), Zeros(p + "attention.dense.bias", d),
                Ones(p + "post_attention_layernorm.weight", d), Zeros(p + "post_attention_layernorm.bias", d),
                Normal(p + "mlp.dense_h_to_4h.weight", 0.02, 4 * d, d), Zeros(p + "mlp.dense_h_to_4h.bias", 4 * d),
                Normal(p + "mlp.dense_4h_to_h.weight", outStd, d, 4 * d), Zeros(p + "mlp.dense_4h_to_h.bias", d));
        }).ToArray();
        _lnfW = Ones(P + "final_layer_norm.weight", d);
        _lnfB = Zeros(P + "final_layer_norm.bias", d);
        _unembed = Normal("embed_out.weight", 0.02, vocab, d);
        _layer = new NeoXLayer(size.Heads, size.HeadDim, 1e-5, parallel: true,
            new Rotary((int)(size.HeadDim * NeoXSize.RotaryPct), 10000), Ops.Activation("gelu"));
    }

    public NeoXSize Size { get; }
    public int Vocab { get; }
    public IReadOnlyList<(string Name, Parameter Value)> Named => _named;
    public long ParameterCount => _named.Sum(p => p.Value.numel());

    private Parameter Add(string name, Tensor init)
    {
        var p = new Parameter(init.to(ScalarType.Float32), requires_grad: true);
        init.Dispose();
        _named.Add((name, p));
        return p;
    }

    private static Tensor Pass(HookSite site, Tensor value) => value;

    /// <summary>Logits [B, T, V] for ids [B, T], exactly as <see cref="GptNeoX"/> computes them.</summary>
    public Tensor Forward(Tensor ids)
    {
        var x = _embed[ids];
        foreach (var block in _blocks) x = _layer.Run(block, x, Pass);
        return Ops.Linear(Ops.LayerNorm(x, _lnfW, _lnfB, 1e-5), _unembed);
    }

    /// <summary>Writes config.json and model.safetensors (float32, Hugging Face tensor names).</summary>
    public void Save(string directory, int context)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "config.json"), Size.ConfigJson(Vocab, context));
        using var scope = NewDisposeScope();
        var host = _named.Select(p => TorchTensors.ToHost(p.Value.detach().contiguous(), p.Name)).ToList();
        SafetensorsWriter.Write(Path.Combine(directory, "model.safetensors"), host, new Dictionary<string, string> { ["format"] = "pt" });
    }

    public void Dispose()
    {
        foreach (var (_, p) in _named) p.Dispose();
        _named.Clear();
    }
}
