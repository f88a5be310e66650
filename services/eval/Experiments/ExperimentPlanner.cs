using Grpc.Core;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Eval.V1;
using Stitching.Core.Compute;
using Stitching.Hosting.Clients;

namespace Stitching.Eval.Experiments;

/// <summary>
/// The dry run of an experiment (docs/experiments.md "Dry run"): the normalised spec, each model found or missing
/// (from the activations service's DescribeModel, which reads configs and headers, never weights), the layers, and
/// analytic estimates of every stage's FLOPs, the activation caches' bytes and the peak memory. A missing model the
/// planner knows (the paper's pairs) is estimated from its published config and listed under problems.
/// </summary>
public sealed class ExperimentPlanner(ServiceChannels channels)
{
    /// <summary>Published configs (layers, d_model, vocabulary, parameters) of the paper's models, for plans made where they are not cached.</summary>
    public static readonly IReadOnlyDictionary<string, (int Layers, int Width, long Vocab, long Parameters)> Published = new Dictionary<string, (int, int, long, long)>
    {
        ["EleutherAI/pythia-70m-deduped"] = (6, 512, 50304, 70_426_624),
        ["EleutherAI/pythia-160m-deduped"] = (12, 768, 50304, 162_322_944),
        ["openai-community/gpt2"] = (12, 768, 50257, 124_439_808),
        ["openai-community/gpt2-medium"] = (24, 1024, 50257, 354_823_168),
        ["google/gemma-2-2b"] = (26, 2304, 256000, 2_614_341_888),
        ["google/gemma-2-9b"] = (42, 3584, 256000, 9_241_705_984),
    };

    /// <summary>Bytes per token of an activation set besides its hooks: token_ids (int64), special, row and position.</summary>
    public const int TokenOverheadBytes = 8 + 1 + 4 + 4;

    public async Task<ExperimentPlan> PlanAsync(ExperimentSpec spec, CancellationToken ct)
    {
        var s = ExperimentSpecs.Normalize(spec);
        var plan = new ExperimentPlan { Spec = s, SpecHash = ExperimentSpecs.Hash(s) };
        var a = await DescribeAsync(s.ModelA, "model_a", plan, ct);
        var b = await DescribeAsync(s.ModelB, "model_b", plan, ct);
        plan.Models.Add(a);
        plan.Models.Add(b);
        if (a.Width == 0 || b.Width == 0)
        {
            plan.LayerA = s.Layers.LayerA is not null ? s.Layers.LayerA!.Value : -1;
            plan.LayerB = s.Layers.LayerB is not null ? s.Layers.LayerB!.Value : -1;
            plan.LayerNote = "unknown: a model's shape is unknown, so nothing is estimated";
            return plan;
        }
        plan.LayerA = s.Layers.LayerA is not null ? s.Layers.LayerA!.Value : a.Layers < 2 ? 0 : Math.Max(1, a.Layers / 2);
        plan.LayerB = s.Layers.LayerB is not null ? s.Layers.LayerB!.Value : -1;
        plan.LayerNote = s.Layers.LayerB is not null ? "both given" : $"A's layer {(s.Layers.LayerA is not null ? "given" : "the middle")}; B's chosen by rule {s.Layers.Rule} after extraction";
        if (plan.LayerA >= a.Layers) plan.Problems.Add($"spec.layers.layer_a: {plan.LayerA} is not below A's {a.Layers} layers.");
        if (plan.LayerB >= b.Layers) plan.Problems.Add($"spec.layers.layer_b: {plan.LayerB} is not below B's {b.Layers} layers.");

        long trainTokens = s.TrainTokens, testTokens = (long)s.TestRows * s.Context;
        // A forward pass costs about 2 FLOPs per parameter per token (the standard estimate; docs/flops.md counts blocks exactly when it runs).
        double Forward(PlannedModel m, long tokens) => 2.0 * m.Parameters * tokens;
        void Stage(string name, string service, double flops, long tokens) => plan.Stages.Add(new PlannedStage { Name = name, Service = service, Flops = flops, Tokens = tokens });
        Stage("extract.train", ServiceChannels.Activations, Forward(a, trainTokens) + Forward(b, trainTokens), trainTokens);
        Stage("extract.test", ServiceChannels.Activations, Forward(a, testTokens) + Forward(b, testTokens), testTokens);
        var fixedLayers = s.Layers.LayerA is not null && s.Layers.LayerB is not null;
        if (!fixedLayers) Stage("match", ServiceChannels.Stitch, 0, Math.Min(trainTokens, 65536));
        Stage("fit.lstsq", ServiceChannels.Stitch, Flops.StitchStatistics(trainTokens, a.Width, b.Width) + Flops.CholeskySolve(a.Width, b.Width) + Flops.CholeskySolve(b.Width, a.Width), trainTokens);
        if (s.Stitch.AdamSteps > 0) Stage("fit.adam", ServiceChannels.Stitch, s.Stitch.AdamSteps * Flops.AdamStitchStep(4096, a.Width, b.Width, true), s.Stitch.AdamSteps * 4096);
        if (s.Evaluations.Contains("splice")) Stage("splice", ServiceChannels.Stitch, 6 * Forward(b, (long)s.SpliceRows * s.Context), (long)s.SpliceRows * s.Context);
        var widths = s.Sae.Widths.Count > 0 ? s.Sae.Widths.ToList() : s.Sae.WidthMultiples.Select(m => m * b.Width).ToList();
        var saeTokens = s.Sae.Epochs * trainTokens;
        long largestSae = 0;
        foreach (var m in widths)
        {
            Stage($"sae.a.{m}", ServiceChannels.Sae, Flops.SaeTrainingStep(saeTokens, a.Width, m, false), saeTokens);
            Stage($"sae.transfer.{m}", ServiceChannels.Sae, 2 * Flops.Matmul(m, a.Width, b.Width), 0);
            Stage($"eval.transfer.{m}", ServiceChannels.Eval, 4 * Forward(b, testTokens) + Flops.SaeForward(testTokens, b.Width, m), testTokens);
            Stage($"sae.scratch.{m}", ServiceChannels.Sae, Flops.SaeTrainingStep(saeTokens, b.Width, m, false), saeTokens);
            Stage($"sae.warm.{m}", ServiceChannels.Sae, Flops.SaeTrainingStep(saeTokens, b.Width, m, false), saeTokens);
            Stage($"sae.compare.{m}", ServiceChannels.Sae, 0, 0);
            if (s.Evaluations.Contains("sae_eval"))
                foreach (var (label, model) in new[] { ("source", a), ("scratch", b), ("warm", b), ("random", b) })
                    Stage($"eval.{label}.{m}", ServiceChannels.Eval, 4 * Forward(model, testTokens) + Flops.SaeForward(testTokens, model.Width, m), testTokens);
            largestSae = Math.Max(largestSae, (long)m * Math.Max(a.Width, b.Width));
        }
        // Probes, steering and features spend budgets of their own (docs/metrics.md); their forward passes are estimated at their default budgets.
        if (s.Evaluations.Contains("probes"))
            for (var i = 0; i < s.Probes.Count; i++)
            {
                var budget = s.Probes[i].MaxTokensPerSplit > 0 ? s.Probes[i].MaxTokensPerSplit : 32768;
                Stage($"probes.{i}", ServiceChannels.Eval, 3 * (Forward(a, budget) + Forward(b, budget)), 3 * budget);
            }
        if (s.Evaluations.Contains("steering"))
        {
            var budget = s.Steering.MaxTokens > 0 ? s.Steering.MaxTokens : 262144;
            Stage("steering", ServiceChannels.Eval, Forward(a, budget) + Forward(b, budget), budget);
        }
        if (s.Evaluations.Contains("features"))
        {
            var budget = s.Features.MaxTokens > 0 ? s.Features.MaxTokens : 65536;
            Stage("features", ServiceChannels.Eval, 2 * (Forward(a, budget) + Forward(b, budget)), budget);
        }
        Stage("report", ServiceChannels.Eval, 0, 0);
        plan.Flops = plan.Stages.Sum(x => x.Flops);
        // Every resid_pre hook when the layers are matched; the two stitch points when both are given.
        long Cache(PlannedModel m, long tokens) => tokens * ((fixedLayers ? 1L : m.Layers) * m.Width * 4 + TokenOverheadBytes);
        plan.ActivationCacheBytes = Cache(a, trainTokens + testTokens) + Cache(b, trainTokens + testTokens);
        // Weights of the larger model (float32 unless asked otherwise) + one SAE in training: weights, gradients and
        // Adam's two moments of W_enc and W_dec, plus a batch's latents three times over (pre-activations, codes, gradients).
        var bytesPerWeight = s.ModelB.Dtype is "bfloat16" or "float16" ? 2 : 4;
        plan.PeakMemoryBytes = Math.Max(a.Parameters, b.Parameters) * bytesPerWeight + 4 * (2 * largestSae * 4) + 3L * s.Sae.BatchSize * widths.DefaultIfEmpty(0).Max() * 4;
        return plan;
    }

    private async Task<PlannedModel> DescribeAsync(ModelSpec model, string field, ExperimentPlan plan, CancellationToken ct)
    {
        var client = new ActivationsService.ActivationsServiceClient(channels.For(ServiceChannels.Activations));
        try
        {
            var info = await client.DescribeModelAsync(new DescribeModelRequest { Model = model }, cancellationToken: ct);
            return new PlannedModel { Model = model.Model, Availability = info.Source, Message = info.Path, Layers = info.Layers, Width = info.Width, Parameters = info.Parameters, VocabSize = info.VocabSize };
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.NotFound or StatusCode.InvalidArgument or StatusCode.FailedPrecondition)
        {
            var missing = new PlannedModel { Model = model.Model, Availability = "missing", Message = e.Status.Detail };
            if (Published.TryGetValue(model.Model.Split('@')[0], out var p))
            {
                (missing.Layers, missing.Width, missing.VocabSize, missing.Parameters) = (p.Layers, p.Width, p.Vocab, p.Parameters);
                missing.Message += " (shape from the published config)";
            }
            plan.Problems.Add($"spec.{field}.model: '{model.Model}' is not available here: {e.Status.Detail}");
            return missing;
        }
    }
}
