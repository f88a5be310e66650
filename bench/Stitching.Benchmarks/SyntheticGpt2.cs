using System.Text.Json;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Stitching.Benchmarks;

/// <summary>The shape of a GPT-2 model (defaults: GPT-2 small).</summary>
public sealed record Gpt2Shape(int Layers = 12, int Width = 768, int Heads = 12, int Vocab = 50257, int Positions = 1024)
{
    /// <summary>GPT-2's MLP width (n_inner unset): 4 d.</summary>
    public int MlpWidth => 4 * Width;
}

/// <summary>
/// Writes a Hugging Face GPT-2 checkpoint (config.json + model.safetensors, Conv1D weights stored [in, out],
/// keys without the "transformer." prefix) with random weights at GPT-2's initialisation scales: matrices
/// N(0, 0.02), residual output projections N(0, 0.02 / sqrt(2 L)), positions N(0, 0.01). Biases and
/// LayerNorm parameters are small random perturbations of 0 and 1 rather than exact constants, so a
/// numerical comparison also exercises them.
/// </summary>
public static class SyntheticGpt2
{
    public static void Write(string directory, Gpt2Shape s, long seed)
    {
        Directory.CreateDirectory(directory);
        using var scope = NewDisposeScope();
        torch.random.manual_seed(seed);
        int d = s.Width, f = s.MlpWidth;
        var residualStd = 0.02 / Math.Sqrt(2.0 * s.Layers);
        var tensors = new List<HostTensor>
        {
            Random("wte.weight", 0.02, 0, s.Vocab, d),
            Random("wpe.weight", 0.01, 0, s.Positions, d),
            Random("ln_f.weight", 0.05, 1, d),
            Random("ln_f.bias", 0.02, 0, d),
        };
        for (var l = 0; l < s.Layers; l++)
        {
            var p = $"h.{l}.";
            tensors.AddRange(
            [
                Random(p + "ln_1.weight", 0.05, 1, d), Random(p + "ln_1.bias", 0.02, 0, d),
                Random(p + "attn.c_attn.weight", 0.02, 0, d, 3 * d), Random(p + "attn.c_attn.bias", 0.02, 0, 3 * d),
                Random(p + "attn.c_proj.weight", residualStd, 0, d, d), Random(p + "attn.c_proj.bias", 0.02, 0, d),
                Random(p + "ln_2.weight", 0.05, 1, d), Random(p + "ln_2.bias", 0.02, 0, d),
                Random(p + "mlp.c_fc.weight", 0.02, 0, d, f), Random(p + "mlp.c_fc.bias", 0.02, 0, f),
                Random(p + "mlp.c_proj.weight", residualStd, 0, f, d), Random(p + "mlp.c_proj.bias", 0.02, 0, d),
            ]);
        }
        SafetensorsWriter.Write(Path.Combine(directory, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        File.WriteAllText(Path.Combine(directory, "config.json"), JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["model_type"] = "gpt2", ["architectures"] = new[] { "GPT2LMHeadModel" },
            ["n_layer"] = s.Layers, ["n_embd"] = d, ["n_head"] = s.Heads, ["n_inner"] = null,
            ["vocab_size"] = s.Vocab, ["n_positions"] = s.Positions, ["n_ctx"] = s.Positions,
            ["activation_function"] = "gelu_new", ["layer_norm_epsilon"] = 1e-5,
        }, new JsonSerializerOptions { WriteIndented = true }));
    }

    // mean + std * N(0, 1), float32, as a host tensor.
    private static HostTensor Random(string name, double std, double mean, params long[] shape)
    {
        using var t = randn(shape) * std + mean;
        return TorchTensors.ToHost(t, name);
    }
}
