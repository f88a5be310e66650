using Stitching.Contracts.Eval.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Compute;
using Stitching.Core.Errors;
using Stitching.Core.Operations;
using Stitching.Eval.Features;
using Stitching.Hosting.Clients;
using Stitching.Sae.Storage;
using D = Stitching.Eval.Features.FeatureSettings.Defaults;

namespace Stitching.Eval.Operations;

/// <summary>"eval.features": checks the request, loads the SAEs and the stitch, runs <see cref="FeatureEvaluator"/>; the result is a FeatureEvaluation.</summary>
public sealed class FeaturesHandler(ArtifactStore store, TorchWorker worker, ActivationsConnection activations, FeatureEvaluator evaluator) : IOperationHandler
{
    public const string OperationKind = "eval.features";
    public string Kind => OperationKind;

    /// <summary>A host restart runs an interrupted evaluation again from its start: it is deterministic given its request and stores nothing until done.</summary>
    public bool Resumable => true;

    public async Task<(FeatureSettings Settings, IReadOnlyList<Stitching.Core.Tensors.HostTensor> Stitch)> ValidateAsync(EvaluateFeaturesRequest r, CancellationToken ct)
    {
        var (a, b) = (ProbeRequests.Model(r.ModelA, "model_a"), ProbeRequests.Model(r.ModelB, "model_b"));
        if (r.SaeA is null) throw StitchingException.InvalidArgument("sae_a", "is required: the SAE on A whose latents are compared.");
        if (r.SaeTransferred is null) throw StitchingException.InvalidArgument("sae_transferred", "is required: its transfer to B (SaeService.Transfer).");
        if (r.Stitch is null) throw StitchingException.InvalidArgument("stitch", "is required: the random baseline is transferred through it.");
        var sa = SaeArtifacts.Describe(store, r.SaeA, "sae_a");
        var sx = SaeArtifacts.Describe(store, r.SaeTransferred, "sae_transferred");
        if (sa.DSae != sx.DSae) throw StitchingException.FailedPrecondition($"sae_transferred: it has {sx.DSae} latents but sae_a has {sa.DSae}; give the transfer of sae_a.", "sae_transferred");
        var infoA = await activations.DescribeAsync(a, ct);
        var infoB = await activations.DescribeAsync(b, ct);
        if (sa.DIn != infoA.Width) throw StitchingException.FailedPrecondition($"sae_a: it reads width {sa.DIn} but {infoA.Name} has width {infoA.Width}.", "sae_a");
        if (sx.DIn != infoB.Width) throw StitchingException.FailedPrecondition($"sae_transferred: it reads width {sx.DIn} but {infoB.Name} has width {infoB.Width}.", "sae_transferred");
        if (!infoA.Hooks.Contains(sa.Hook)) throw StitchingException.FailedPrecondition($"sae_a: its hook '{Check.Shorten(sa.Hook)}' is not a hook of {infoA.Name}.", "sae_a");
        if (!infoB.Hooks.Contains(sx.Hook)) throw StitchingException.FailedPrecondition($"sae_transferred: its hook '{Check.Shorten(sx.Hook)}' is not a hook of {infoB.Name}.", "sae_transferred");
        var stitch = ProbeRequests.ReadStitch(store, r.Stitch, infoA.Width, infoB.Width);
        int Or(int v, int fallback) => v == 0 ? fallback : v;
        return (new FeatureSettings(a, b, sa.Hook, sx.Hook, infoA.Layers, infoB.Layers,
            Or(Check.InRange(r.Context, 0, ProbeRequests.MaxContext, "context", $"0 = default {D.Context}"), D.Context),
            Check.InRange(r.MaxTokens, 0, 1L << 22, "max_tokens", $"0 = default {D.MaxTokens}") is var t && t > 0 ? t : D.MaxTokens,
            Or(Check.InRange(r.Sentences, 0, 4096, "sentences", $"0 = default {D.Sentences}"), D.Sentences),
            Or(Check.InRange(r.Rewrites, 0, 32, "rewrites", $"0 = default {D.Rewrites}"), D.Rewrites),
            Or(Check.InRange(r.MinActive, 0, 1 << 20, "min_active", $"0 = default {D.MinActive}"), D.MinActive), r.Seed), stitch);
    }

    public async Task ExecuteAsync(OperationContext context, CancellationToken ct)
    {
        var request = context.SpecAs<EvaluateFeaturesRequest>();
        var (s, stitch) = await ValidateAsync(request, ct);
        var saeA = await worker.RunAsync(() => SaeArtifacts.Load(store, request.SaeA, "sae_a"), ct);
        var saeX = await worker.RunAsync(() => SaeArtifacts.Load(store, request.SaeTransferred, "sae_transferred"), ct);
        try
        {
            var r = await evaluator.EvaluateAsync(activations.Models(), s, saeA, saeX, stitch,
                (phase, step, total) => context.Report(new Contracts.Common.V1.OperationProgress { Phase = phase, Step = step, TotalSteps = total }), ct);
            var e = new FeatureEvaluation { HookA = s.HookA, HookB = s.HookB, Structural = r.Structural, Semantic = r.Semantic, Unclassified = r.Unclassified, Tokens = r.Tokens, Sentences = r.SentencesUsed };
            foreach (var g in r.Groups)
                e.Groups.Add(new CorrelationSummary { Group = g.Name, Latents = g.Latents, Mean = g.Mean, Median = g.Quantile(0.5), Q10 = g.Quantile(0.1), Q90 = g.Quantile(0.9), Histogram = { g.Histogram() } });
            var h = r.Entropy;
            e.Entropy = new EntropyLatents
            {
                SubspaceA = h.SubspaceA, SubspaceB = h.SubspaceB, Threshold = h.Threshold, LatentsA = h.LatentsA, KeptB = h.KeptB, MeanA = h.MeanA, MeanB = h.MeanB,
                EntropyMeanA = h.EntropyMeanA, EntropyMeanB = h.EntropyMeanB, TopMeanA = h.TopMeanA, TopMeanB = h.TopMeanB,
                RandomMeanA = h.RandomMeanA, RandomMeanB = h.RandomMeanB, Correlation = h.Correlation,
                Top = { h.Top.Select(t => new EntropyLatent { Latent = t.Latent, FractionA = t.A, FractionB = t.B }) },
            };
            context.SetResult(e);
        }
        finally { await worker.RunAsync(() => { saeA.Dispose(); saeX.Dispose(); return 0; }, CancellationToken.None); }
    }
}
