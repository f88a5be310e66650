using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Eval.V1;
using Stitching.Contracts.Sae.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Compute;
using Stitching.Core.Errors;
using Stitching.Core.Operations;
using Stitching.Core.Stitches;
using Stitching.Core.Tensors;
using Stitching.Eval.Probes;
using Stitching.Hosting.Clients;
using Stitching.Sae.Storage;
using Stitching.Sae.Weights;

namespace Stitching.Eval.Operations;

/// <summary>
/// "eval.probes": resolves the dataset, the hooks (given, or the SAEs' own), loads the SAEs and the stitch,
/// and runs <see cref="ProbeEvaluator"/>; the result is a ProbeEvaluation. A rerun recomputes (it is
/// deterministic for a request: seeded draws, Newton fits).
/// </summary>
public sealed class ProbesHandler(ArtifactStore store, TorchWorker worker, ActivationsConnection activations, ProbeEvaluator evaluator) : IOperationHandler
{
    public const string OperationKind = "eval.probes";
    public string Kind => OperationKind;

    /// <summary>A host restart runs an interrupted evaluation again from its start: it is deterministic given its request and stores nothing until done.</summary>
    public bool Resumable => true;

    /// <summary>Everything that can be checked before the job starts: fields, artifacts, hooks and widths.</summary>
    public async Task<(ProbeSettings Settings, ProbeSet Set, IReadOnlyList<HostTensor>? Stitch)> ValidateAsync(EvaluateProbesRequest r, CancellationToken ct)
    {
        var s = ProbeRequests.ToSettings(r);
        var set = ProbeRequests.ToProbeSet(r.Dataset);
        SaeInfo? Describe(ArtifactRef? sae, string field) => sae is null ? null : SaeArtifacts.Describe(store, sae, field);
        var (a, x, b) = (Describe(r.SaeA, "sae_a"), Describe(r.SaeTransferred, "sae_transferred"), Describe(r.SaeB, "sae_b"));
        var hookA = s.HookA.Length > 0 ? s.HookA : a?.Hook ?? "";
        var hookB = s.HookB.Length > 0 ? s.HookB : x?.Hook ?? "";
        if (hookA.Length == 0) throw StitchingException.InvalidArgument("hook_a", "give the hook the probes read on A (or sae_a, whose hook is used).");
        if (hookB.Length == 0) throw StitchingException.InvalidArgument("hook_b", "give the hook the probes read on B (or sae_transferred, whose hook is used).");
        var infoA = await activations.DescribeAsync(s.ModelA, ct);
        var infoB = await activations.DescribeAsync(s.ModelB, ct);
        if (!infoA.Hooks.Contains(hookA)) throw StitchingException.InvalidArgument("hook_a", $"'{Check.Shorten(hookA)}' is not a hook of {infoA.Name}.");
        if (!infoB.Hooks.Contains(hookB)) throw StitchingException.InvalidArgument("hook_b", $"'{Check.Shorten(hookB)}' is not a hook of {infoB.Name}.");
        void Width(SaeInfo? sae, string field, int width, string model)
        {
            if (sae is not null && sae.DIn != width)
                throw StitchingException.FailedPrecondition($"{field}: it reads width {sae.DIn} but {model} has width {width}; give an SAE of that model.", field);
        }
        Width(a, "sae_a", infoA.Width, infoA.Name);
        Width(x, "sae_transferred", infoB.Width, infoB.Name);
        Width(b, "sae_b", infoB.Width, infoB.Name);
        var stitch = r.Stitch is null ? null : ProbeRequests.ReadStitch(store, r.Stitch, infoA.Width, infoB.Width);
        return (s with { HookA = hookA, HookB = hookB }, set, stitch);
    }

    public async Task ExecuteAsync(OperationContext context, CancellationToken ct)
    {
        var request = context.SpecAs<EvaluateProbesRequest>();
        var (settings, set, stitchHost) = await ValidateAsync(request, ct);
        var loaded = await worker.RunAsync(() =>
        {
            SaeParameters? Load(ArtifactRef? r, string field) => r is null ? null : SaeArtifacts.Load(store, r, field);
            return new ProbeModels(Load(request.SaeA, "sae_a"), Load(request.SaeTransferred, "sae_transferred"), Load(request.SaeB, "sae_b"),
                stitchHost);
        }, ct);
        try
        {
            var result = await evaluator.EvaluateAsync(activations.Models(), set, settings, loaded,
                (phase, step, total) => context.Report(new OperationProgress { Phase = phase, Step = step, TotalSteps = total }), ct);
            context.SetResult(ToProto(result, settings));
            context.Report(new OperationProgress { Phase = "done" });
        }
        finally
        {
            await worker.RunAsync(() =>
            {
                loaded.SaeA?.Dispose(); loaded.SaeTransferred?.Dispose(); loaded.SaeB?.Dispose();
                return 0;
            }, CancellationToken.None);
        }
    }

    public static ProbeEvaluation ToProto(ProbeResult r, ProbeSettings s)
    {
        var e = new ProbeEvaluation { Dataset = r.Dataset, TokenLevel = r.TokenLevel, HookA = s.HookA, HookB = s.HookB, TokensA = r.TokensA, TokensB = r.TokensB };
        foreach (var t in r.Tasks)
        {
            var task = new ProbeTask { Name = t.Name, Positive = t.Positive, Train = t.Train, Validation = t.Validation, Test = t.Test };
            foreach (var sc in t.Scores)
            {
                var (low, high) = sc.Interval;
                task.Scores.Add(new ProbeScore { Probe = sc.Probe, K = sc.K, Accuracy = sc.Accuracy, CiLow = low, CiHigh = high, Test = sc.Test, L2 = sc.L2, Latents = { sc.Latents } });
            }
            e.Tasks.Add(task);
        }
        return e;
    }
}
