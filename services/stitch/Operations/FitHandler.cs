using System.Diagnostics;
using Google.Protobuf;
using Microsoft.Extensions.DependencyInjection;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Stitch.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Compute;
using Stitching.Core.Operations;
using Stitching.Core.Telemetry;
using Stitching.Core.Tensors;
using Stitching.Stitch.Artifacts;
using Stitching.Stitch.Data;
using Stitching.Stitch.Fitting;
using Stitching.Core.Stitches;

using FlopLedger = Stitching.Core.Compute.FlopLedger;
using LedgerEntry = Stitching.Core.Compute.LedgerEntry;

namespace Stitching.Stitch.Operations;

/// <summary>
/// "stitch.fit": one streamed pass over the paired rows accumulates the float64 statistics (and keeps
/// the held-out rows, and for adam the training rows), then the stitch is solved or trained, scored on
/// the held-out rows and stored as a "stitch" artifact. The id hashes the request, so asking twice
/// reuses the stored stitch.
/// </summary>
public sealed class FitHandler(RowSources sources, ArtifactStore store, TorchWorker worker,
    [FromKeyedServices("Stitch")] StitchingTelemetry telemetry) : IOperationHandler
{
    public const string OperationKind = "stitch.fit";
    public string Kind => OperationKind;

    public static ArtifactRef TargetOf(FitRequest request) => new()
    {
        Kind = StitchFile.Kind,
        Id = string.IsNullOrEmpty(request.Id)
            ? ContentIds.Of("st-", JsonFormatter.Default.Format(request))
            : ArtifactIds.Validate(request.Id, "id"),
    };

    public async Task ExecuteAsync(OperationContext context, CancellationToken ct)
    {
        var request = context.SpecAs<FitRequest>();
        var settings = FitRequests.ToSettings(request);
        var target = TargetOf(request);
        if (store.Exists(target))
        {
            context.AddOutput(target);
            context.SetResult(FromManifest(store.GetManifest(target), reused: true));
            return;
        }
        var (a, b) = sources.OpenPair(request.A, request.B);
        try
        {
            using var activity = telemetry.Source.StartActivity(OperationKind);
            activity?.SetTag(StitchingTelemetry.OperationAttribute, context.Id);
            var clock = Stopwatch.StartNew();
            var pass = await StreamAsync(a, b, settings, context, ct);
            var fitted = await worker.RunAsync(() => Solve(pass, settings, context, ct), ct);
            var seconds = clock.Elapsed.TotalSeconds;
            telemetry.AddFlops(fitted.Flops, activity);
            activity?.SetTag(StitchingTelemetry.ModelAttribute, $"{(a as ActivationSetSource)?.Model} -> {(b as ActivationSetSource)?.Model}");
            activity?.SetTag(StitchingTelemetry.HookAttribute, $"{(a as ActivationSetSource)?.Hook ?? request.A.Tensor} -> {(b as ActivationSetSource)?.Hook ?? request.B.Tensor}");
            telemetry.RecordWork("fit", pass.TrainTokens, fitted.Flops, (pass.TrainTokens + pass.HeldOutTokens) * (long)(a.Width + b.Width) * sizeof(float), seconds, activity);
            var metrics = new Dictionary<string, double>(fitted.Metrics)
            {
                ["tokens"] = pass.TrainTokens, ["heldout_tokens"] = pass.HeldOutTokens, ["flops"] = fitted.Flops, ["seconds"] = seconds,
            };
            var metadata = new Dictionary<string, string>
            {
                ["method"] = settings.Method, ["solver"] = fitted.Solver, ["width_a"] = a.Width.ToString(), ["width_b"] = b.Width.ToString(),
                ["model_a"] = (a as ActivationSetSource)?.Model ?? "", ["model_b"] = (b as ActivationSetSource)?.Model ?? "",
                ["hook_a"] = (a as ActivationSetSource)?.Hook ?? request.A.Tensor, ["hook_b"] = (b as ActivationSetSource)?.Hook ?? request.B.Tensor,
                ["source_a"] = request.A.Artifact.Display(), ["source_b"] = request.B.Artifact.Display(),
            };
            var ledger = FlopLedger.Of(new LedgerEntry(FlopLedger.StitchFit, fitted.Flops, pass.TrainTokens, seconds, target.Display()));
            var manifest = StitchArtifact.Write(store, target, fitted.Tensors, metadata, metrics, JsonFormatter.Default.Format(request), ledger);
            context.AddOutput(target);
            context.Report(new OperationProgress { Phase = "done", Tokens = pass.TrainTokens, Flops = fitted.Flops });
            context.SetResult(FromManifest(manifest, reused: false));
        }
        finally
        {
            RowSources.Close(a);
            RowSources.Close(b);
        }
    }

    /// <summary>What one pass over the rows leaves behind (tensors live on the torch thread's side, detached).</summary>
    private sealed record Pass(SufficientStatistics? Statistics, List<RowBlock> TrainA, List<RowBlock> TrainB,
        List<RowBlock> HeldOutA, List<RowBlock> HeldOutB, long TrainTokens, long HeldOutTokens, double Flops);

    private async Task<Pass> StreamAsync(IRowSource a, IRowSource b, FitSettings s, OperationContext context, CancellationToken ct)
    {
        var stats = s.NeedsStatistics ? new SufficientStatistics() : null;
        var pass = new Pass(stats, [], [], [], [], 0, 0, 0);
        long train = 0, heldOut = 0;
        double flops = 0;
        await foreach (var chunk in new PairedRows(a, b, s.HeldOutFraction, s.MaxTokens).ReadAsync(ct))
        {
            if (stats is not null && chunk.TrainA.Rows > 0)
                await worker.RunAsync(() => { stats.Add(Torch(chunk.TrainA), Torch(chunk.TrainB)); return 0; }, ct);
            if (stats is not null) flops += Flops.StitchStatistics(chunk.TrainA.Rows, a.Width, b.Width);
            if (s.Method == FitSettings.AdamMethod) { pass.TrainA.Add(chunk.TrainA); pass.TrainB.Add(chunk.TrainB); }
            var keep = (int)Math.Min(chunk.HeldOutA.Rows, s.MaxHeldOutTokens - heldOut);
            if (keep > 0) { pass.HeldOutA.Add(chunk.HeldOutA.Slice(0, keep)); pass.HeldOutB.Add(chunk.HeldOutB.Slice(0, keep)); }
            train += chunk.TrainA.Rows;
            heldOut += Math.Max(0, keep);
            context.Report(new OperationProgress { Phase = "read", Tokens = train + heldOut, TotalSteps = a.Tokens, Step = train + heldOut, Flops = flops });
        }
        if (train == 0)
            throw Core.Errors.StitchingException.InvalidArgument("a", "no training tokens remain after masking special tokens and holding out rows; give more rows or lower heldout_fraction.");
        return pass with { TrainTokens = train, HeldOutTokens = heldOut, Flops = flops };
    }

    private sealed record Fitted(IReadOnlyList<HostTensor> Tensors, Dictionary<string, double> Metrics, double Flops, string Solver);

    private static Fitted Solve(Pass pass, FitSettings s, OperationContext context, CancellationToken ct)
    {
        using var statistics = pass.Statistics;
        var flops = pass.Flops;
        AffineStitch? exact = null;
        var solver = "";
        if (statistics is not null)
        {
            context.Report(new OperationProgress { Phase = "solve", Flops = flops });
            var up = LeastSquares.Solve(statistics.Up(), s.Ridge);
            var down = LeastSquares.Solve(statistics.Down(), s.Ridge);
            exact = new AffineStitch(up.P, up.B, down.P, down.B);
            flops += up.Flops + down.Flops;
            solver = $"{up.Solver},{down.Solver}";
        }
        var stitch = exact;
        var metrics = new Dictionary<string, double>();
        if (s.Method == FitSettings.AdamMethod)
        {
            var before = flops;
            var (widthA, widthB) = (pass.TrainA[0].Width, pass.TrainB[0].Width);
            var outcome = AdamStitchTrainer.Train(Torch(RowBlock.Concat(pass.TrainA)), Torch(RowBlock.Concat(pass.TrainB)), s.Adam, exact,
                (step, total, loss) => context.Report(new OperationProgress
                {
                    Phase = "adam", Step = step, TotalSteps = total, Flops = before + step * Flops.AdamStitchStep(s.Adam.BatchSize, widthA, widthB, s.Adam.Alpha > 0), Metrics = { ["loss"] = loss },
                }), ct);
            stitch = outcome.Stitch;
            flops += outcome.Flops;
            metrics["final_loss"] = outcome.FinalLoss;
            metrics["steps"] = outcome.Steps;
        }
        if (pass.HeldOutTokens > 0)
            foreach (var (k, v) in HeldOutEvaluation.Evaluate(stitch!, Torch(RowBlock.Concat(pass.HeldOutA)), Torch(RowBlock.Concat(pass.HeldOutB))))
                metrics[k] = v;
        return new Fitted(StitchFile.ToHost(stitch!), metrics, flops, solver);
    }

    private static TorchSharp.torch.Tensor Torch(RowBlock block) => TorchSharp.torch.tensor(block.Values, [block.Rows, block.Width]);

    private static FitResult FromManifest(ArtifactManifest m, bool reused)
    {
        var r = new FitResult
        {
            Stitch = m.Ref, Reused = reused, Method = m.Metadata.GetValueOrDefault("method", ""), Solver = m.Metadata.GetValueOrDefault("solver", ""),
            TrainTokens = (long)m.Metrics.GetValueOrDefault("tokens"), HeldoutTokens = (long)m.Metrics.GetValueOrDefault("heldout_tokens"),
            Flops = m.Ledger().TotalFlops, Seconds = m.Metrics.GetValueOrDefault("seconds"), Ledger = m.Ledger().ToProto(),
        };
        foreach (var (k, v) in m.Metrics.Where(p => p.Key.StartsWith("fvu_") || p.Key.StartsWith("mse_") || p.Key is "final_loss" or "steps")) r.Metrics[k] = v;
        return r;
    }
}
