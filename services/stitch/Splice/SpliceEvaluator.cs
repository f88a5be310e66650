using Stitching.Core.Forward;
using System.Diagnostics;
using Stitching.Core.Compute;
using Stitching.Core.Errors;
using Stitching.Core.Metrics;
using Stitching.Core.Stitches;
using Stitching.Core.Tensors;
using static TorchSharp.torch;

namespace Stitching.Stitch.Splice;

/// <summary>
/// Spliced evaluation (paper section 3, Table 1). Per batch: clean A and B (capturing resid_pre at the
/// splice points); A->B starts B at l_B from T_up(h_A); B->A starts A at l_A from T_down(h_B); the round
/// trips rewrite a model's own stream with the stitch's affine chain; the floors zero- and mean-ablate
/// the finishing model's splice point (the mean over all evaluated tokens). Every CE is the
/// token-weighted mean of the batches' mean next-token CE.
/// </summary>
public sealed class SpliceEvaluator(TorchWorker worker)
{
    /// <summary>The runs in report order, with the model that finishes each.</summary>
    public static readonly IReadOnlyList<(string Run, string Finisher)> Runs =
        [("A", "A"), ("B", "B"), ("A->B", "B"), ("B->A", "A"), ("A->B->A", "A"), ("B->A->B", "B")];

    public async Task<SpliceResult> EvaluateAsync(ILanguageModels models, IReadOnlyList<HostTensor> stitch, IReadOnlyList<int[]> rows,
        SpliceSettings s, CancellationToken ct)
    {
        if (rows.Count == 0) throw StitchingException.InvalidArgument("token_ids", "give at least one row of tokens.");
        if (s.BatchSize <= 0) throw StitchingException.InvalidArgument("batch_size", $"must be positive (default {SpliceSettings.DefaultBatchSize}).");
        var clock = Stopwatch.StartNew();
        var batches = rows.Chunk(s.BatchSize).ToList();

        // pass 1: clean runs and the captures the splices start from
        var clean = new List<(ForwardOutcome A, ForwardOutcome B)>();
        foreach (var ids in batches)
            clean.Add((await models.ForwardAsync(new ForwardCall(s.A, ids, Capture: s.HookA), ct),
                       await models.ForwardAsync(new ForwardCall(s.B, ids, Capture: s.HookB), ct)));
        // A stitch between other widths would reach libtorch as a shape error: refuse it here.
        var pUp = stitch.First(t => t.Name == StitchFile.PUp);
        var (widthA, widthB) = (clean[0].A.Captured!.Shape[^1], clean[0].B.Captured!.Shape[^1]);
        if (pUp.Shape.Length != 2 || pUp.Shape[0] != widthA || pUp.Shape[1] != widthB)
            throw StitchingException.FailedPrecondition($"the stitch maps width {pUp.Shape[0]} -> {pUp.Shape[^1]}, but {s.HookA} of model_a has width {widthA} and {s.HookB} of model_b width {widthB}; fit a stitch between these models and layers.", "stitch");
        var (meanA, meanB) = await worker.RunAsync(() => (MeanOf(clean.Select(c => c.A.Captured!)), MeanOf(clean.Select(c => c.B.Captured!))), ct);

        var ce = new Dictionary<string, Mean>();
        void Add(string key, ForwardOutcome f, long tokens) { if (!ce.TryGetValue(key, out var m)) ce[key] = m = new Mean(); m.Add(f.MeanLoss, tokens); }
        for (var i = 0; i < batches.Count; i++)
        {
            var ids = batches[i];
            var tokens = ids.Length * (long)(ids[0].Length - 1);
            var (cleanA, cleanB) = clean[i];
            Add("A", cleanA, tokens);
            Add("B", cleanB, tokens);
            var (up, down) = await worker.RunAsync(() =>
            {
                using var scope = NewDisposeScope();
                var t = StitchFile.ToStitch(stitch, "stitch");
                return (TorchTensors.ToHost(t.Up(TorchTensors.ToTorchFloat(cleanA.Captured!, "residual")), "residual"),
                        TorchTensors.ToHost(t.Down(TorchTensors.ToTorchFloat(cleanB.Captured!, "residual")), "residual"));
            }, ct);
            Add("A->B", await models.ForwardAsync(new ForwardCall(s.B, ids, Start: (s.LayerB, up)), ct), tokens);
            Add("B->A", await models.ForwardAsync(new ForwardCall(s.A, ids, Start: (s.LayerA, down)), ct), tokens);
            Add("A->B->A", await models.ForwardAsync(new ForwardCall(s.A, ids, Edit: new RoundTripEdit(s.HookA, Up: true)), ct), tokens);
            Add("B->A->B", await models.ForwardAsync(new ForwardCall(s.B, ids, Edit: new RoundTripEdit(s.HookB, Up: false)), ct), tokens);
            Add("zero A", await models.ForwardAsync(new ForwardCall(s.A, ids, Edit: new AblateEdit(s.HookA, null)), ct), tokens);
            Add("zero B", await models.ForwardAsync(new ForwardCall(s.B, ids, Edit: new AblateEdit(s.HookB, null)), ct), tokens);
            Add("mean A", await models.ForwardAsync(new ForwardCall(s.A, ids, Edit: new AblateEdit(s.HookA, meanA)), ct), tokens);
            Add("mean B", await models.ForwardAsync(new ForwardCall(s.B, ids, Edit: new AblateEdit(s.HookB, meanB)), ct), tokens);
        }
        var result = Runs.Select(r =>
        {
            var (run, clean_, zero, mean) = (ce[r.Run].Value, ce[r.Finisher].Value, ce["zero " + r.Finisher].Value, ce["mean " + r.Finisher].Value);
            return new SpliceRun(r.Run, r.Finisher, run, clean_, zero, mean, LanguageModelMetrics.LossRecovered(clean_, run, mean));
        }).ToList();
        return new SpliceResult(result, rows.Count, rows.Sum(x => (long)x.Length), clock.Elapsed.TotalSeconds);
    }

    /// <summary>Mean over every captured token, [d] (float64 accumulation, float32 result).</summary>
    private static HostTensor MeanOf(IEnumerable<HostTensor> captured)
    {
        using var scope = NewDisposeScope();
        var all = cat(captured.Select(c => { var x = TorchTensors.ToTorchFloat(c, "residual"); return x.reshape(-1, x.shape[^1]); }).ToList(), 0);
        return TorchTensors.ToHost(all.to(ScalarType.Float64).mean([0]).to(ScalarType.Float32), "residual");
    }

    /// <summary>Token-weighted running mean.</summary>
    private sealed class Mean
    {
        private double _sum;
        private long _count;
        public void Add(double value, long count) { _sum += value * count; _count += count; }
        public double Value => _sum / _count;
    }
}
