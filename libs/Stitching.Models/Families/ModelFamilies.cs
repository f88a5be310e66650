using Stitching.Core.Errors;
using Stitching.Models.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Stitching.Models.Families;

/// <summary>Chooses the family implementation from config.json's model_type.</summary>
public static class ModelFamilies
{
    public static readonly IReadOnlyList<string> Supported = ["gpt2", "gpt_neox", "llama", "mistral", "qwen2", "gemma2"];

    public static CausalLm Load(Checkpoint ck, ScalarType dtype, Device device)
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16))
            throw StitchingException.InvalidArgument("dtype", $"{dtype} is not a model dtype; use float32, bfloat16 or float16.");
        using var scope = NewDisposeScope();
        return ck.ModelType switch
        {
            "gpt2" => new Gpt2(ck, dtype, device),
            "gpt_neox" => new GptNeoX(ck, dtype, device),
            "llama" or "mistral" or "qwen2" => new Llama(ck, dtype, device),
            "gemma2" => new Gemma2(ck, dtype, device),
            var other => throw StitchingException.FailedPrecondition(
                $"{ck.Directory}: model_type '{other}' is not supported; supported: {string.Join(", ", Supported)}.", "model"),
        };
    }

    /// <summary>Opens a checkpoint folder and loads it.</summary>
    public static CausalLm Load(string directory, ScalarType dtype = ScalarType.Float32, string device = "cpu")
    {
        using var ck = Checkpoint.Open(directory);
        return Load(ck, dtype, torch.device(device));
    }
}

/// <summary>What config.json says about a model, without loading weights.</summary>
public sealed record ModelShape(string Family, int Layers, int Width, int VocabSize, int? MaxPositions, bool HasResidMid, long Parameters)
{
    /// <summary>Every hook name this model has, in forward order.</summary>
    public IReadOnlyList<string> Hooks()
    {
        var sites = HasResidMid
            ? new[] { HookSite.ResidPre, HookSite.AttnOut, HookSite.ResidMid, HookSite.MlpOut, HookSite.ResidPost }
            : [HookSite.ResidPre, HookSite.AttnOut, HookSite.MlpOut, HookSite.ResidPost];
        return Enumerable.Range(0, Layers).SelectMany(l => sites.Select(s => new HookPoint(s, l).ToString()))
            .Append(HookPoint.FinalNormalizedName).ToList();
    }

    public static ModelShape Of(Checkpoint ck)
    {
        var family = ck.ModelType;
        if (!ModelFamilies.Supported.Contains(family))
            throw StitchingException.FailedPrecondition($"{ck.Directory}: model_type '{family}' is not supported; supported: {string.Join(", ", ModelFamilies.Supported)}.", "model");
        var gpt2 = family == "gpt2";
        var layers = gpt2 ? ck.Int("n_layer") : ck.Int("num_hidden_layers");
        var width = gpt2 ? ck.Int("n_embd") : ck.Int("hidden_size");
        var residMid = family != "gpt_neox" || !ck.Bool("use_parallel_residual", true);
        var parameters = ck.WeightShapes().Where(w => !IsBuffer(w.Name)).Sum(w => w.Shape.Aggregate(1L, (a, b) => a * b));
        return new ModelShape(family, layers, width, ck.Int("vocab_size"), gpt2 ? ck.Int("n_positions", 1024) : null, residMid, parameters);
    }

    private static bool IsBuffer(string name) =>
        name.EndsWith(".attn.bias") && !name.Contains("c_attn") || name.EndsWith("masked_bias") || name.EndsWith("inv_freq") || name.EndsWith("attention.bias");
}
