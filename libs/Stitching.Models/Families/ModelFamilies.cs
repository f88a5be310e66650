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
