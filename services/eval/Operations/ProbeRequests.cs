using Stitching.Contracts.Eval.V1;
using Stitching.Core.Errors;
using Stitching.Core.Forward;
using Stitching.Eval.Probes;
using D = Stitching.Eval.Probes.ProbeSettings.Defaults;

namespace Stitching.Eval.Operations;

/// <summary>The edge of EvaluateProbes: checks every field a client sets and maps the request to domain settings.</summary>
public static class ProbeRequests
{
    public const int MaxContext = 4096, MaxBatch = 256, MaxPerClass = 1 << 16;
    public const long MaxTokensPerSplit = 1 << 22;

    /// <summary>Settings with every default filled in; hooks may still be empty (the handler takes the SAEs' hooks).</summary>
    public static ProbeSettings ToSettings(EvaluateProbesRequest r)
    {
        var a = Model(r.ModelA, "model_a");
        var b = Model(r.ModelB, "model_b");
        var hookA = r.HookA.Length == 0 ? "" : Check.Name(r.HookA, "hook_a", "a hook name");
        var hookB = r.HookB.Length == 0 ? "" : Check.Name(r.HookB, "hook_b", "a hook name");
        if (r.SaeTransferred is not null && r.SaeA is null) throw StitchingException.InvalidArgument("sae_a", "is required with sae_transferred: sparse probes pick their latents on A.");
        if (r.SaeA is not null && r.SaeTransferred is null) throw StitchingException.InvalidArgument("sae_transferred", "is required with sae_a: transfer it with SaeService.Transfer first.");
        if (r.SaeB is not null && r.SaeA is null) throw StitchingException.InvalidArgument("sae_b", "is a baseline of the sparse probes; give sae_a and sae_transferred too.");
        for (var i = 0; i < r.K.Count; i++) Check.InRange(r.K[i], 1, 4096, $"k[{i}]", "latents per sparse probe");
        for (var i = 0; i < r.L2.Count; i++) Check.InRange(r.L2[i], 1e-12, 1e6, $"l2[{i}]", "an L2 strength > 0");
        Check.InRange(r.L2.Count, 0, 32, "l2", "strengths to try");
        Check.InRange(r.K.Count, 0, 32, "k", "latent counts");
        var context = Check.InRange(r.Context, 0, MaxContext, "context", $"tokens per row; 0 = default {D.Context}");
        var budget = Check.InRange(r.MaxTokensPerSplit, 0, MaxTokensPerSplit, "max_tokens_per_split", $"0 = default {D.MaxTokensPerSplit}");
        var perClass = Check.InRange(r.MaxExamplesPerClass, 0, MaxPerClass, "max_examples_per_class", $"0 = default {D.MaxPerClass}");
        var batch = Check.InRange(r.BatchSize, 0, MaxBatch, "batch_size", $"rows per Forward call; 0 = default {D.BatchSize}");
        return new ProbeSettings(a, b, hookA, hookB, r.K.Count > 0 ? r.K.Distinct().Order().ToArray() : D.Ks,
            context == 0 ? D.Context : context, budget == 0 ? D.MaxTokensPerSplit : budget, perClass == 0 ? D.MaxPerClass : perClass,
            r.Seed, r.L2.Count > 0 ? r.L2.Distinct().ToArray() : D.L2, batch == 0 ? D.BatchSize : batch);
    }

    private static LanguageModelRef Model(Contracts.Activations.V1.ModelSpec? m, string field)
    {
        if (m is null || string.IsNullOrEmpty(m.Model)) throw StitchingException.InvalidArgument($"{field}.model", "is required; name a model (see ActivationsService.ListModels).");
        return new LanguageModelRef(m.Model, m.Dtype, m.Device);
    }
}
