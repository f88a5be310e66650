using Google.Protobuf.WellKnownTypes;
using Stitching.Contracts.Eval.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Errors;
using Stitching.Core.Forward;
using Stitching.Core.Operations;
using Stitching.Core.Stitches;
using Stitching.Core.Tensors;
using Stitching.Eval.Probes;
using Stitching.Eval.Steering;
using Stitching.Hosting.Clients;
using D = Stitching.Eval.Steering.SteeringSettings.Defaults;

namespace Stitching.Eval.Operations;

/// <summary>"eval.steering": checks the request, reads the stitch and runs <see cref="SteeringEvaluator"/>; the result is a SteeringEvaluation.</summary>
public sealed class SteeringHandler(ArtifactStore store, ActivationsConnection activations, SteeringEvaluator evaluator) : IOperationHandler
{
    public const string OperationKind = "eval.steering";
    public string Kind => OperationKind;

    /// <summary>A host restart runs an interrupted evaluation again from its start: it is deterministic given its request and stores nothing until done.</summary>
    public bool Resumable => true;

    public async Task<(SteeringSettings Settings, ProbeSet Set, IReadOnlyList<HostTensor> Stitch)> ValidateAsync(EvaluateSteeringRequest r, CancellationToken ct)
    {
        var (a, b) = (ProbeRequests.Model(r.ModelA, "model_a"), ProbeRequests.Model(r.ModelB, "model_b"));
        var hookA = Check.Name(r.HookA, "hook_a", "the hook the stitch reads on A");
        var hookB = Check.Name(r.HookB, "hook_b", "the hook the stitch writes on B");
        if (r.Stitch is null) throw StitchingException.InvalidArgument("stitch", "is required: the direction moves to B through P_up.");
        var set = ProbeRequests.ToProbeSet(r.Dataset ?? new ProbeDataset { Named = "brown:genre" });
        var target = r.Target == 0 && r.Dataset is null ? D.Target : Check.InRange(r.Target, 0, set.ClassNames.Count - 1, "target", "the class to steer towards");
        SteeringEvaluator.CheckData(set, target);
        var s = new SteeringSettings(a, b, hookA, hookB, target,
            Or(Check.InRange(r.Prompts, 0, 1024, "prompts", $"0 = default {D.Prompts}"), D.Prompts),
            Or(Check.InRange(r.PromptWords, 0, 256, "prompt_words", $"0 = default {D.PromptWords}"), D.PromptWords),
            Or(Check.InRange(r.NewTokens, 0, 256, "new_tokens", $"0 = default {D.NewTokens}"), D.NewTokens),
            Or(Check.InRange(r.Context, 0, ProbeRequests.MaxContext, "context", $"0 = default {D.Context}"), D.Context),
            Check.InRange(r.MaxTokens, 0, 1L << 24, "max_tokens", $"0 = default {D.MaxTokens}") is var m && m > 0 ? m : D.MaxTokens, r.Seed);
        var infoA = await activations.DescribeAsync(a, ct);
        var infoB = await activations.DescribeAsync(b, ct);
        if (!infoA.Hooks.Contains(hookA)) throw StitchingException.InvalidArgument("hook_a", $"'{Check.Shorten(hookA)}' is not a hook of {infoA.Name}.");
        if (!infoB.Hooks.Contains(hookB)) throw StitchingException.InvalidArgument("hook_b", $"'{Check.Shorten(hookB)}' is not a hook of {infoB.Name}.");
        var stitch = ProbeRequests.ReadStitch(store, r.Stitch, infoA.Width, infoB.Width);
        return (s, set, stitch);
    }

    private static int Or(int value, int fallback) => value == 0 ? fallback : value;

    public async Task ExecuteAsync(OperationContext context, CancellationToken ct)
    {
        var (s, set, stitch) = await ValidateAsync(context.SpecAs<EvaluateSteeringRequest>(), ct);
        var r = await evaluator.EvaluateAsync(activations.Models(), set, s, stitch, (phase, step, total) => context.Report(new Contracts.Common.V1.OperationProgress { Phase = phase, Step = step, TotalSteps = total }), ct);
        var e = new SteeringEvaluation
        {
            Dataset = r.Dataset, Target = r.Target, HookA = s.HookA, HookB = s.HookB, ZA = r.ZA, ZB = r.ZB, ZTransferred = r.ZTransferred,
            CosineNativeTransferred = r.CosineNativeTransferred, JudgeAccuracy = r.JudgeAccuracy, JudgeTest = r.JudgeTest, TransferGap = r.TransferGap,
            TokensA = r.TokensA, TokensB = r.TokensB, VectorA = { r.VectorA }, VectorB = { r.VectorB }, VectorTransferred = { r.VectorTransferred },
        };
        (e.JudgeCiLow, e.JudgeCiHigh) = Stitching.Core.Metrics.Intervals.Wilson(r.JudgeCorrect, r.JudgeTest);
        foreach (var c in r.Conditions)
        {
            var (low, high) = c.Interval;
            e.Conditions.Add(new SteeringCondition { Name = c.Name, Successes = c.Successes, Trials = c.Trials, Rate = c.Rate, CiLow = low, CiHigh = high, Samples = { c.Samples } });
        }
        context.SetResult(e);
    }
}
