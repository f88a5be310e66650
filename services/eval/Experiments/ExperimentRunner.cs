using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Grpc.Core;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Eval.V1;
using Stitching.Contracts.Sae.V1;
using Stitching.Contracts.Stitch.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Errors;
using Stitching.Core.Tensors;
using Stitching.Eval.Reports;
using Stitching.Hosting.Clients;
using Stitching.Reports;
using S = Stitching.Hosting.Clients.ServiceChannels;

namespace Stitching.Eval.Experiments;

/// <summary>
/// The paper's pipeline on one model pair, stage by stage through the services (<see cref="ExperimentStages"/>):
/// paired extraction of training and held-out text, layer matching, lstsq and Adam stitches, the Table-1 splice,
/// per SAE width a TopK SAE on A, its transfer, its zero-shot quality on B, B's SAE from scratch and from the
/// transfer and their comparison, then Table 2, probes, steering and feature-level transfer. It writes the Markdown
/// report and report.json (docs/report.md; schema schemas/report.schema.json) into a "report" artifact.
/// </summary>
public sealed class ExperimentRunner(ArtifactStore store, ExperimentStages stages, ExperimentSpec s, string hash, CancellationToken ct)
{
    public const string Schema = "stitching.paper-report/2";
    private readonly StringBuilder _md = new();
    private readonly JsonObject _json = new() { ["schema"] = Schema };

    private ActivationsService.ActivationsServiceClient Activations => new(stages.Channel(S.Activations));
    private StitchService.StitchServiceClient Stitch => new(stages.Channel(S.Stitch));
    private SaeService.SaeServiceClient Sae => new(stages.Channel(S.Sae));
    private EvalService.EvalServiceClient Eval => new(stages.Channel(S.Eval));

    private void Say(string markdown) => _md.AppendLine(markdown);
    private bool Runs(string evaluation) => s.Evaluations.Contains(evaluation);

    /// <summary>Stages this spec runs (for progress before they are known one by one).</summary>
    public static int CountStages(ExperimentSpec s)
    {
        var widths = Math.Max(1, s.Sae.Widths.Count + s.Sae.WidthMultiples.Count);
        var n = 2 + (s.Layers.LayerA is not null && s.Layers.LayerB is not null ? 0 : 1) + 1 + (s.Stitch.AdamSteps > 0 ? 1 : 0) + widths * 6 + 1;
        if (s.Evaluations.Contains("splice")) n += 1;
        if (s.Evaluations.Contains("sae_eval")) n += widths * 4;
        if (s.Evaluations.Contains("probes")) n += s.Probes.Count;
        if (s.Evaluations.Contains("steering")) n += 1;
        if (s.Evaluations.Contains("features")) n += 1;
        return n;
    }

    public async Task<ExperimentResult> ExecuteAsync()
    {
        var clock = Stopwatch.StartNew();
        var a = await Activations.DescribeModelAsync(new DescribeModelRequest { Model = s.ModelA }, cancellationToken: ct);
        var b = await Activations.DescribeModelAsync(new DescribeModelRequest { Model = s.ModelB }, cancellationToken: ct);
        Say($"# Stitching report: {a.Name} -> {b.Name}\n\nA = {a.Name} ({a.Layers} layers, d={a.Width}, {a.Parameters:N0} parameters); " +
            $"B = {b.Name} ({b.Layers} layers, d={b.Width}, {b.Parameters:N0} parameters). Training text: {Corpus(s.TrainCorpus)} ({s.TrainTokens:N0} tokens per model), " +
            $"held-out text: {Corpus(s.TestCorpus)} ({(long)s.TestRows * s.Context:N0} tokens); context {s.Context}. Experiment {s.Name} (spec {hash[..12]}).\n");
        _json["experiment"] = new JsonObject { ["name"] = s.Name, ["spec_hash"] = hash, ["spec"] = ExperimentSpecs.ToJson(s) };

        // Matching needs every layer's stream; with both layers given only the two stitch points are extracted.
        var fixedLayers = s.Layers.LayerA is not null && s.Layers.LayerB is not null;
        string[] Pre(ModelInfo m, int? only) => only is { } l ? [$"blocks.{l}.hook_resid_pre"] : Enumerable.Range(0, m.Layers).Select(l => $"blocks.{l}.hook_resid_pre").ToArray();
        int? onlyA = fixedLayers ? s.Layers.LayerA : null, onlyB = fixedLayers ? s.Layers.LayerB : null;
        if (onlyA >= a.Layers) throw StitchingException.InvalidArgument("spec.layers.layer_a", $"{onlyA} is not below A's {a.Layers} layers.");
        if (onlyB >= b.Layers) throw StitchingException.InvalidArgument("spec.layers.layer_b", $"{onlyB} is not below B's {b.Layers} layers.");
        var train = await ExtractAsync("extract.train", s.TrainCorpus, s.TrainTokens, Pre(a, onlyA), Pre(b, onlyB));
        var test = await ExtractAsync("extract.test", s.TestCorpus, (long)s.TestRows * s.Context, Pre(a, onlyA), Pre(b, onlyB));
        var (layerA, layerB) = fixedLayers ? Given() : await MatchAsync(a, train);
        _json["pair"] = new JsonObject { ["a"] = a.Name, ["b"] = b.Name, ["layer_a"] = layerA, ["layer_b"] = layerB, ["width_a"] = a.Width, ["width_b"] = b.Width };
        string hookA = $"blocks.{layerA}.hook_resid_pre", hookB = $"blocks.{layerB}.hook_resid_pre";

        var lstsq = await FitAsync("fit.lstsq", train, hookA, hookB, "lstsq");
        var fits = new List<(string Label, FitResult Fit)> { ("lstsq (default)", lstsq) };
        if (s.Stitch.AdamSteps > 0)
            fits.Add(($"adam (paper recipe: lr 1e-4, clip 1, cosine, alpha 1, zero init, {s.Stitch.AdamSteps} steps of 4096 tokens)",
                await FitAsync("fit.adam", train, hookA, hookB, "adam", new AdamSettings { Steps = s.Stitch.AdamSteps })));
        Say("## Stitch fitting (held-out FVU and MSE)\n\n| method | FLOPs | seconds | FVU A->B | FVU B->A | FVU A->B->A | FVU B->A->B | MSE A->B | MSE B->A |\n|---|---|---|---|---|---|---|---|---|");
        foreach (var (label, f) in fits)
            Say($"| {label} | {f.Flops:E2} | {f.Seconds:F2} | {f.Metrics["fvu_up"]:F4} | {f.Metrics["fvu_down"]:F4} | {f.Metrics["fvu_up_down"]:F4} | {f.Metrics["fvu_down_up"]:F4} | {f.Metrics["mse_up"]:G4} | {f.Metrics["mse_down"]:G4} |");
        Say("");
        _json["stitch"] = StitchJson(lstsq, "lstsq");
        _json["stitches"] = new JsonArray(fits.Select(f => (JsonNode)StitchJson(f.Fit, f.Fit.Method)).ToArray());

        var testIds = await TokenRowsAsync(test.ActivationSets[0]);
        if (Runs("splice")) await SpliceAsync(testIds, layerA, layerB, lstsq);
        var saes = await SaesAsync(a, b, train, test, testIds, hookA, hookB, lstsq);
        if (Runs("sae_eval")) await SaeTableAsync(a, b, testIds, saes);
        if (Runs("probes")) await ProbesAsync(lstsq, saes[0]);
        if (Runs("steering")) await SteeringAsync(lstsq, hookA, hookB);
        if (Runs("features")) await FeaturesAsync(lstsq, saes[0]);

        var ledger = new Contracts.Common.V1.FlopLedger();
        foreach (var r in stages.Records.Where(r => r.Flops > 0))
            ledger.Entries.Add(new LedgerEntry { Phase = r.Name, Flops = r.Flops, Seconds = r.Seconds, Artifact = r.Artifacts.Count > 0 ? r.Artifacts[0].Display() : "" });
        ledger.TotalFlops = ledger.Entries.Sum(e => e.Flops);
        var report = WriteReport(a, b, ledger, clock.Elapsed.TotalSeconds);
        var result = new ExperimentResult { SpecHash = hash, Spec = s, Report = report, Ledger = ledger };
        result.Stages.AddRange(stages.Records);
        return result;
    }

    private static string Corpus(CorpusSpec c) => c.SourceCase switch
    {
        CorpusSpec.SourceOneofCase.Named => c.Named,
        CorpusSpec.SourceOneofCase.TextFiles => $"{c.TextFiles.Paths.Count} text files",
        CorpusSpec.SourceOneofCase.Jsonl => $"{c.Jsonl.Paths.Count} jsonl files",
        _ => $"{c.Texts?.Texts.Count ?? 0} inline documents",
    };

    /// <summary>report.md, report.json, report.html and figure-*.png as one "report" artifact named by the spec's hash.</summary>
    private ArtifactRef WriteReport(ModelInfo a, ModelInfo b, Contracts.Common.V1.FlopLedger ledger, double seconds)
    {
        var target = ExperimentSpecs.ReportRef(hash);
        var inputs = new ExperimentResult { SpecHash = hash, Ledger = ledger };
        inputs.Stages.AddRange(stages.Records.Select(r => { var c = r.Clone(); c.Reused = false; c.Seconds = 0; c.FinishedAt = null; return c; }));
        if (stages.Lookup("report", inputs) is not null && store.Exists(target)) return target;
        var table = new StringBuilder("## Stages and FLOP ledger\n\n| stage | service | FLOPs | seconds | reused | artifacts |\n|---|---|---|---|---|---|\n");
        var list = new JsonArray();
        foreach (var r in stages.Records)
        {
            table.AppendLine($"| {r.Name} | {r.Service} | {(r.Flops > 0 ? r.Flops.ToString("E2") : "-")} | {r.Seconds:F1} | {(r.Reused ? "yes" : "no")} | {string.Join(", ", r.Artifacts.Select(x => x.Display()))} |");
            list.Add(new JsonObject
            {
                ["name"] = r.Name, ["service"] = r.Service, ["key"] = r.Key, ["operation_id"] = r.OperationId, ["flops"] = r.Flops, ["seconds"] = r.Seconds, ["reused"] = r.Reused,
                ["artifacts"] = new JsonArray(r.Artifacts.Select(x => (JsonNode)x.Display()).ToArray()),
            });
        }
        table.AppendLine($"\nTotal {ledger.TotalFlops:E2} analytic FLOPs (docs/flops.md) over {stages.Records.Count} stages; " +
            $"{stages.Records.Count(r => r.Reused)} reused from earlier runs. Stages without FLOPs are unary calls whose services do not count them.");
        Say(table.ToString());
        _json["stages"] = list;
        _json["ledger"] = new JsonObject { ["total_flops"] = ledger.TotalFlops, ["entries"] = new JsonArray(ledger.Entries.Select(e => (JsonNode)new JsonObject { ["phase"] = e.Phase, ["flops"] = e.Flops, ["seconds"] = e.Seconds, ["artifact"] = e.Artifact }).ToArray()) };
        var clock = Stopwatch.StartNew();
        Finite(_json);
        var title = $"Stitching report: {a.Name} -> {b.Name}";
        var rendered = ReportWriter.Render(title, _md.ToString(), _json);
        using (var w = store.Create(target))
        {
            w.WriteFile("report.md", Encoding.UTF8.GetBytes(_md.ToString()));
            w.WriteFile("report.json", Encoding.UTF8.GetBytes(rendered.Json));
            w.WriteFile("report.html", Encoding.UTF8.GetBytes(rendered.Html));
            foreach (var f in rendered.Figures) w.WriteFile($"figure-{f.Name}.png", f.Png);
            w.Manifest.SpecJson = Google.Protobuf.JsonFormatter.Default.Format(s);
            w.Manifest.Metadata["title"] = title;
            w.Manifest.Metadata["experiment"] = s.Name;
            w.Manifest.Metadata["spec_hash"] = hash;
            if (rendered.FiguresSkipped is not null) w.Manifest.Metadata["figures_skipped"] = rendered.FiguresSkipped;
            w.Manifest.Metrics["flops"] = ledger.TotalFlops;
            w.Manifest.Metrics["seconds"] = seconds;
            w.Manifest.Ledger = ledger;
            try { w.Commit(); }
            catch (StitchingException e) when (e.Kind == ErrorKind.AlreadyExists) { } // an identical run wrote it meanwhile
        }
        stages.Record("report", inputs, target, clock.Elapsed.TotalSeconds);
        return target;
    }

    /// <summary>JSON has no NaN or infinity: a number that is not finite (an undefined ratio, a fit that failed) becomes null.</summary>
    private static void Finite(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var key in o.Select(kv => kv.Key).ToList())
                    if (o[key] is JsonValue v && v.TryGetValue<double>(out var d) && !double.IsFinite(d)) o[key] = null;
                    else Finite(o[key]);
                break;
            case JsonArray a:
                for (var i = 0; i < a.Count; i++)
                    if (a[i] is JsonValue v && v.TryGetValue<double>(out var d) && !double.IsFinite(d)) a[i] = null;
                    else Finite(a[i]);
                break;
        }
    }

    private async Task<ExtractResult> ExtractAsync(string stage, CorpusSpec corpus, long tokens, string[] hooksA, string[] hooksB)
    {
        var request = new ExtractRequest
        {
            Corpus = corpus, Tokens = new TokenSetSpec { ContextLength = s.Context, MaxTokens = tokens, BosPolicy = BosPolicy.Never },
            BatchSize = s.ExtractBatchSize, ShardTokens = 65536,
            Models = { new ModelHooks { Model = s.ModelA, Hooks = { hooksA } }, new ModelHooks { Model = s.ModelB, Hooks = { hooksB } } },
        };
        // The stage's FLOPs are its activation sets' (their manifests' ledgers), also when the service reused sets it had.
        return await stages.OperationAsync<ExtractResult>(stage, S.Activations, request, ch => new ActivationsService.ActivationsServiceClient(ch).ExtractAsync(request, cancellationToken: ct).ResponseAsync,
            async (r, _) =>
            {
                var artifacts = new ArtifactsService.ArtifactsServiceClient(stages.Channel(S.Activations));
                var total = 0.0;
                foreach (var set in r.ActivationSets) total += (await artifacts.GetArtifactAsync(new GetArtifactRequest { Ref = set }, cancellationToken: ct)).Ledger?.TotalFlops ?? 0;
                return total;
            });
    }

    private (int, int) Given()
    {
        Say($"## Layer matching\n\nBoth layers given: A layer {s.Layers.LayerA!.Value} -> B layer {s.Layers.LayerB!.Value}; only these streams were extracted, and no matching ran.\n");
        _json["matching"] = new JsonObject { ["chosen_by"] = "given", ["hook_a"] = $"blocks.{s.Layers.LayerA!.Value}.hook_resid_pre" };
        return (s.Layers.LayerA!.Value, s.Layers.LayerB!.Value);
    }

    private async Task<(int LayerA, int LayerB)> MatchAsync(ModelInfo a, ExtractResult train)
    {
        var request = new MatchLayersRequest
        {
            ActivationSetA = train.ActivationSets[0], ActivationSetB = train.ActivationSets[1], Rule = s.Layers.Rule,
            // A one-layer model has no stream past its embeddings; only then are they candidates.
            IncludeEmbeddings = a.Layers < 2,
        };
        var match = await stages.CallAsync("match", S.Stitch, request, ch => new StitchService.StitchServiceClient(ch).MatchLayersAsync(request, cancellationToken: ct).ResponseAsync);
        var layerA = s.Layers.LayerA is not null ? s.Layers.LayerA!.Value : a.Layers < 2 ? 0 : Math.Max(1, a.Layers / 2);
        var rowA = match.HooksA.IndexOf($"blocks.{layerA}.hook_resid_pre");
        if (rowA < 0) throw StitchingException.InvalidArgument("spec.layers.layer_a", $"{layerA}: A has no candidate hook blocks.{layerA}.hook_resid_pre (candidates: {string.Join(", ", match.HooksA)}).");
        var layerB = s.Layers.LayerB is not null ? s.Layers.LayerB!.Value : int.Parse(match.HooksB[match.BestB[rowA]].Split('.')[1]);
        if (!match.HooksB.Contains($"blocks.{layerB}.hook_resid_pre")) throw StitchingException.InvalidArgument("spec.layers.layer_b", $"{layerB}: B has no hook blocks.{layerB}.hook_resid_pre.");
        string Table(string title, IReadOnlyList<double> values, bool star) => $"{title}:\n\n```\n{StitchTables.Matrix(match.HooksA, match.HooksB, values, star ? match.BestB : null)}\n```\n";
        Say($"## Layer matching ({match.Tokens} non-special tokens strided across the training set; halves by token id: {match.FitTokens} fit / {match.HeldoutTokens} held out; " +
            $"SVCCA keeps {match.SvccaVariance:P0} of the variance; embeddings (blocks.0) {(a.Layers < 2 ? "included: A has one layer" : "excluded")}; * = chosen by rule {match.Rule})\n");
        Say(Table("Held-out SVCCA", match.HeldoutSvcca, match.Rule == "heldout_svcca"));
        Say(Table("Held-out least-squares FVU A->B", match.FvuUp, false));
        Say(Table("Held-out least-squares FVU B->A", match.FvuDown, false));
        Say(Table("In-sample SVCCA (the paper's criterion)", match.Svcca, match.Rule == "svcca"));
        Say(Table("Linear CKA", match.Cka, false));
        Say($"Stitch point: A layer {layerA}{(s.Layers.LayerA is not null ? " (given)" : " (middle)")} -> B layer {layerB}{(s.Layers.LayerB is not null ? " (given)" : $" (rule {match.Rule})")}.\n");
        var criteria = new JsonObject();
        for (var j = 0; j < match.HooksB.Count; j++)
        {
            var k = rowA * match.HooksB.Count + j;
            criteria[match.HooksB[j]] = new JsonObject
            {
                ["heldout_svcca"] = match.HeldoutSvcca[k], ["svcca"] = match.Svcca[k], ["cka"] = match.Cka[k], ["fvu_up"] = match.FvuUp[k], ["fvu_down"] = match.FvuDown[k],
            };
        }
        _json["matching"] = new JsonObject
        {
            ["criteria"] = criteria, ["chosen_by"] = s.Layers.LayerB is not null ? "given" : match.Rule, ["hook_a"] = match.HooksA[rowA],
            ["tokens"] = match.Tokens, ["fit_tokens"] = match.FitTokens, ["heldout_tokens"] = match.HeldoutTokens, ["svcca_variance"] = match.SvccaVariance,
        };
        return (layerA, layerB);
    }

    private async Task<FitResult> FitAsync(string stage, ExtractResult train, string hookA, string hookB, string method, AdamSettings? adam = null)
    {
        var request = new FitRequest
        {
            A = new ActivationSource { Artifact = train.ActivationSets[0], Tensor = hookA },
            B = new ActivationSource { Artifact = train.ActivationSets[1], Tensor = hookB }, Method = method,
        };
        if (adam is not null) request.Adam = adam;
        return await stages.OperationAsync<FitResult>(stage, S.Stitch, request, ch => new StitchService.StitchServiceClient(ch).FitAsync(request, cancellationToken: ct).ResponseAsync,
            (r, _) => Task.FromResult(r.Flops));
    }

    /// <summary>The held-out rows' token ids [test_rows, context], read from the held-out activation set of A.</summary>
    private async Task<Contracts.Common.V1.Tensor> TokenRowsAsync(ArtifactRef set)
    {
        using var call = Activations.ReadActivations(new ReadActivationsRequest { ActivationSet = set, Names = { "token_ids" } }, cancellationToken: ct);
        var assembler = new TensorAssembler();
        var parts = new List<HostTensor>();
        await foreach (var chunk in call.ResponseStream.ReadAllAsync(ct))
            if (assembler.Add(chunk) is { } t) parts.Add(t);
        if (parts.Count == 0) throw StitchingException.FailedPrecondition($"activation set {set.Id} holds no token_ids.", "spec.test_corpus");
        var dtype = parts[0].DType;
        var bytes = parts.SelectMany(p => p.Data.ToArray()).ToArray();
        var size = HostTensor.ByteLength(dtype, [1]);
        var rows = bytes.Length / size / s.Context;
        if (rows == 0) throw StitchingException.FailedPrecondition($"spec.test_corpus: it gave fewer than {s.Context} tokens; give more held-out text.", "spec.test_corpus");
        return TensorCodec.ToProto(new HostTensor("token_ids", dtype, [rows, s.Context], bytes.AsMemory(0, (int)(rows * s.Context * size))));
    }

    private async Task SpliceAsync(Contracts.Common.V1.Tensor ids, int layerA, int layerB, FitResult lstsq)
    {
        var request = new EvaluateSpliceRequest
        {
            ModelA = s.ModelA, ModelB = s.ModelB, LayerA = layerA, LayerB = layerB, Stitch = lstsq.Stitch, TokenIds = ids, MaxRows = Math.Min(s.SpliceRows, (int)ids.Shape[0]),
        };
        var splice = await stages.CallAsync("splice", S.Stitch, request, ch => new StitchService.StitchServiceClient(ch).EvaluateSpliceAsync(request, cancellationToken: ct).ResponseAsync);
        Say("## Spliced next-token cross-entropy (paper Table 1; lstsq stitch)\n\n| run | CE | clean CE of finisher | zero-ablation | mean-ablation | loss recovered |\n|---|---|---|---|---|---|");
        var json = new JsonArray();
        foreach (var r in splice.Rows)
        {
            Say($"| {r.Run} | {r.Ce:F3} | {r.CleanCe:F3} | {r.ZeroAblationCe:F3} | {r.MeanAblationCe:F3} | {r.LossRecovered:F3} |");
            json.Add(new JsonObject { ["run"] = r.Run, ["ce"] = r.Ce, ["clean_ce"] = r.CleanCe, ["zero_ablation_ce"] = r.ZeroAblationCe, ["mean_ablation_ce"] = r.MeanAblationCe, ["loss_recovered"] = r.LossRecovered });
        }
        Say($"\n{splice.Sequences} rows, {splice.Tokens} tokens.\n");
        _json["splice"] = json;
    }

    /// <summary>The SAEs of one width: trained on A, its transfer, B's from scratch and from the transfer.</summary>
    private sealed record SaeSet(int Width, ArtifactRef Source, ArtifactRef Transferred, ArtifactRef Scratch, ArtifactRef Warm, SaeEvaluation TransferEval);

    private async Task<SaeEvaluation> EvaluateSaeAsync(string stage, ModelSpec model, ArtifactRef sae, Contracts.Common.V1.Tensor ids, ulong? randomSeed = null)
    {
        var request = new EvaluateSaeRequest { Model = model, Sae = sae, TokenIds = ids };
        if (randomSeed is { } seed) request.Random = new RandomSae { Seed = seed };
        return await stages.CallAsync(stage, S.Eval, request, ch => new EvalService.EvalServiceClient(ch).EvaluateSaeAsync(request, cancellationToken: ct).ResponseAsync);
    }

    private async Task<List<SaeSet>> SaesAsync(ModelInfo a, ModelInfo b, ExtractResult train, ExtractResult test, Contracts.Common.V1.Tensor testIds, string hookA, string hookB, FitResult lstsq)
    {
        var sets = new List<SaeSet>();
        Say($"## SAE transfer and warm start ({s.Sae.Architecture} k = {s.Sae.K}, Adam lr {s.Sae.Lr:G}, batch {s.Sae.BatchSize}, {s.Sae.Epochs} passes over the training tokens; " +
            "inputs scaled so E||x||^2 = d; b_dec subtracted from inputs; unit-norm decoder rows)\n");
        Say($"Explained variance (EV) is measured on a fixed held-out batch of B's {Corpus(s.TestCorpus)} activations. 'Random' is scratch's initial SAE, 'init' the exact warm-start " +
            "initialisation (transfer, re-scaled, unit-norm decoder rows). FLOPs include the stitch's for the warm run. Zero-shot numbers: the transfer on B's held-out tokens " +
            "(docs/metrics.md \"SAE evaluation\").\n");
        Say("| width | source FVU on A (held out) | zero-shot FVU on B | zero-shot L0 | zero-shot dead % | init FVU | random FVU | scratch final EV | warm final EV |\n|---|---|---|---|---|---|---|---|---|");
        var savingsMd = new StringBuilder("\n| width | threshold | EV | scratch FLOPs | warm FLOPs | saving |\n|---|---|---|---|---|---|\n");
        var details = new StringBuilder();
        var list = new JsonArray();
        var widths = s.Sae.Widths.Count > 0 ? s.Sae.Widths.ToList() : s.Sae.WidthMultiples.Select(m => m * b.Width).ToList();
        foreach (var width in widths)
        {
            var sourceSae = await TrainSaeAsync($"sae.a.{width}", train.ActivationSets[0], test.ActivationSets[0], hookA, width, null);
            var transferRequest = new TransferRequest { Sae = sourceSae.Ref, Stitch = lstsq.Stitch };
            var transferred = await stages.CallAsync($"sae.transfer.{width}", S.Sae, transferRequest,
                ch => new SaeService.SaeServiceClient(ch).TransferAsync(transferRequest, cancellationToken: ct).ResponseAsync, artifacts: r => [r.Ref]);
            var zero = await EvaluateSaeAsync($"eval.transfer.{width}", s.ModelB, transferred.Ref, testIds);
            var scratch = await TrainSaeAsync($"sae.scratch.{width}", train.ActivationSets[1], test.ActivationSets[1], hookB, width, null);
            var warm = await TrainSaeAsync($"sae.warm.{width}", train.ActivationSets[1], test.ActivationSets[1], hookB, width, transferred.Ref);
            var compareRequest = new CompareRequest { Scratch = scratch.Ref, Warm = warm.Ref };
            var cmp = await stages.CallAsync($"sae.compare.{width}", S.Sae, compareRequest, ch => new SaeService.SaeServiceClient(ch).CompareAsync(compareRequest, cancellationToken: ct).ResponseAsync);
            sets.Add(new SaeSet(width, sourceSae.Ref, transferred.Ref, scratch.Ref, warm.Ref, zero));
            Say($"| {width} | {sourceSae.Metrics["heldout_fvu"]:F3} | {zero.Fvu:F3} | {zero.L0:F1} | {zero.DeadFraction * 100:F1} | {1 - cmp.WarmInitialExplainedVariance:F3} | " +
                $"{1 - cmp.ScratchInitialExplainedVariance:F3} | {cmp.ScratchFinalExplainedVariance:F3} | {cmp.WarmFinalExplainedVariance:F3} |");
            var savings = new JsonArray();
            foreach (var row in cmp.Rows)
            {
                var label = row.RelativeToScratchFinal ? $"{row.Threshold:P0} of scratch final" : $"EV {row.Threshold:F2}";
                savingsMd.AppendLine($"| {width} | {label} | {row.ExplainedVariance:F3} | {FlopText(row.ScratchFlops)} | {FlopText(row.WarmFlops)} | {(double.IsNaN(row.RelativeSaving) ? "n/a" : $"{row.RelativeSaving * 100:F1}%")} |");
                savings.Add(new JsonObject
                {
                    ["threshold"] = row.Threshold, ["relative_to_scratch_final"] = row.RelativeToScratchFinal, ["explained_variance"] = row.ExplainedVariance,
                    ["scratch_flops"] = row.ScratchFlops > 0 ? row.ScratchFlops : null, ["warm_flops"] = row.WarmFlops > 0 ? row.WarmFlops : null,
                    ["saving"] = double.IsNaN(row.RelativeSaving) ? null : row.RelativeSaving,
                });
            }
            details.AppendLine($"- width {width}: FVU ~ A C^-beta over the training log: scratch A {cmp.ScratchFit.A:G3}, beta {cmp.ScratchFit.Beta:F3}; warm A {cmp.WarmFit.A:G3}, beta {cmp.WarmFit.Beta:F3}; " +
                $"cos(initial, final decoder rows): scratch {cmp.ScratchDecoderCosine:F3}, warm {cmp.WarmDecoderCosine:F3}; stitch FLOPs {cmp.StitchFlops:E2}; SAE ids: source {sourceSae.Ref.Id}, scratch {scratch.Ref.Id}, warm {warm.Ref.Id}.");
            list.Add(new JsonObject
            {
                ["width"] = width, ["k"] = s.Sae.K, ["source_fvu"] = sourceSae.Metrics["heldout_fvu"], ["zero_shot_fvu"] = zero.Fvu, ["zero_shot_l0"] = zero.L0, ["zero_shot_dead_fraction"] = zero.DeadFraction,
                ["init_fvu"] = 1 - cmp.WarmInitialExplainedVariance, ["random_fvu"] = 1 - cmp.ScratchInitialExplainedVariance,
                ["scratch_final_ev"] = cmp.ScratchFinalExplainedVariance, ["warm_final_ev"] = cmp.WarmFinalExplainedVariance, ["measured_on"] = cmp.MeasuredOn,
                ["stitch_flops"] = cmp.StitchFlops, ["scratch_decoder_cosine"] = cmp.ScratchDecoderCosine, ["warm_decoder_cosine"] = cmp.WarmDecoderCosine,
                ["power_law"] = new JsonObject { ["scratch_a"] = cmp.ScratchFit.A, ["scratch_beta"] = cmp.ScratchFit.Beta, ["warm_a"] = cmp.WarmFit.A, ["warm_beta"] = cmp.WarmFit.Beta },
                ["savings"] = savings,
                ["scratch_curve"] = CurveJson(cmp.ScratchCurve), ["warm_curve"] = CurveJson(cmp.WarmCurve),
                ["decoder_cosine_histogram"] = new JsonObject
                {
                    ["edges"] = new JsonArray(Enumerable.Range(0, RotationBins + 1).Select(i => (JsonNode)(-1 + 2.0 * i / RotationBins)).ToArray()),
                    ["scratch"] = Counts(cmp.ScratchDecoderCosines), ["warm"] = Counts(cmp.WarmDecoderCosines),
                },
                ["sae_ids"] = new JsonObject { ["source"] = sourceSae.Ref.Id, ["transferred"] = transferred.Ref.Id, ["scratch"] = scratch.Ref.Id, ["warm"] = warm.Ref.Id },
            });
        }
        Say(savingsMd.ToString());
        Say(details.ToString());
        _json["sae"] = list;
        return sets;
    }

    private async Task<SaeInfo> TrainSaeAsync(string stage, ArtifactRef set, ArtifactRef heldOut, string hook, int width, ArtifactRef? init)
    {
        var request = new TrainRequest
        {
            ActivationSet = set, Hook = hook, Sae = new SaeSpec { Architecture = s.Sae.Architecture, DSae = width, K = s.Sae.K },
            BatchSize = s.Sae.BatchSize, Lr = s.Sae.Lr, Seed = s.Sae.Seed, LogEvery = s.Sae.LogEvery, Tokens = s.Sae.Epochs * s.TrainTokens, EvalActivationSet = heldOut,
        };
        if (init is not null) request.Init = init;
        // The stage's own FLOPs: the SAE training entry of the ledger (a warm start's ledger also carries its stitch's, counted by the fit stage).
        var result = await stages.OperationAsync<TrainResult>(stage, S.Sae, request, ch => new SaeService.SaeServiceClient(ch).TrainAsync(request, cancellationToken: ct).ResponseAsync,
            (r, _) => Task.FromResult(r.Ledger?.Entries.Where(e => e.Phase == Core.Compute.FlopLedger.SaeTrain).Sum(e => e.Flops) ?? r.Flops));
        return result.Sae;
    }

    /// <summary>
    /// The paper's Table 2 on the held-out rows: each width's source SAE on A, its zero-shot transfer, B's scratch and
    /// warm SAEs, and a random SAE of the same shape on B (seed = width) as the floor (docs/metrics.md "SAE evaluation").
    /// </summary>
    private async Task SaeTableAsync(ModelInfo a, ModelInfo b, Contracts.Common.V1.Tensor ids, List<SaeSet> saes)
    {
        var list = new JsonArray();
        var md = new StringBuilder();
        foreach (var set in saes)
            foreach (var (label, model, sae, random) in new[]
                     {
                         ("source", a, set.Source, false), ("transfer", b, set.Transferred, false), ("scratch", b, set.Scratch, false),
                         ("warm", b, set.Warm, false), ("random", b, set.Scratch, true),
                     })
            {
                var spec = model == a ? s.ModelA : s.ModelB;
                var r = label == "transfer" ? set.TransferEval : await EvaluateSaeAsync($"eval.{label}.{set.Width}", spec, sae, ids, random ? (ulong)set.Width : null);
                md.AppendLine(SaeTables.Row(label, model.Name, set.Width, r));
                var json = SaeTables.Json(r, random ? $"random (seed {set.Width}, shape of {sae.Id})" : sae.Id);
                json["label"] = label;
                json["model"] = model.Name;
                json["width"] = set.Width;
                list.Add(json);
            }
        var first = (JsonObject)list[0]!;
        Say($"## SAE evaluation on held-out text (paper Table 2; {Corpus(s.TestCorpus)}, {first["tokens"]} non-BOS tokens, {first["predicted_tokens"]} next-token predictions)\n\n" +
            "Each SAE's reconstruction replaces its hook (BOS positions keep their clean value); CE in nats; loss recovered against zero ablation / mean ablation " +
            "(docs/metrics.md \"SAE evaluation\"). transfer = the source SAE through the stitch with no training on B; random = a random SAE of the same shape " +
            "(seeded unit decoder rows, encoder = decoder^T, b_dec = the hook's mean on these tokens), the floor.\n");
        Say(SaeTables.Header);
        Say(md.ToString());
        _json["sae_eval"] = list;
    }

    /// <summary>Probe transfer (paper section 6) with the smallest width's SAEs and the lstsq stitch, one stage per task of the spec.</summary>
    private async Task ProbesAsync(FitResult lstsq, SaeSet saes)
    {
        Say($"## Probe transfer (paper section 6; width-{saes.Width} SAEs, lstsq stitch)\n\n" +
            "Logistic probes (docs/metrics.md \"Probes\"): dense on A and B, A's dense probe moved to B through P_down, and sparse probes on the top-k " +
            "latents of A's SAE, reused on the transferred SAE without retraining and retrained, against B's own SAE (trained from scratch) and random latents.\n");
        var list = new JsonArray();
        for (var i = 0; i < s.Probes.Count; i++)
        {
            var request = s.Probes[i].Clone();
            request.ModelA = s.ModelA;
            request.ModelB = s.ModelB;
            request.Stitch = lstsq.Stitch;
            request.SaeA = saes.Source;
            request.SaeTransferred = saes.Transferred;
            request.SaeB = saes.Scratch;
            var e = await stages.OperationAsync<ProbeEvaluation>($"probes.{i}", S.Eval, request, ch => new EvalService.EvalServiceClient(ch).EvaluateProbesAsync(request, cancellationToken: ct).ResponseAsync);
            Say(ProbeTables.Markdown(e));
            list.Add(ProbeTables.Json(e));
        }
        _json["probes"] = list;
    }

    /// <summary>Steering transfer (paper section 7) at the stitch points.</summary>
    private async Task SteeringAsync(FitResult lstsq, string hookA, string hookB)
    {
        var request = s.Steering.Clone();
        request.ModelA = s.ModelA;
        request.ModelB = s.ModelB;
        request.Stitch = lstsq.Stitch;
        request.HookA = hookA;
        request.HookB = hookB;
        var e = await stages.OperationAsync<SteeringEvaluation>("steering", S.Eval, request, ch => new EvalService.EvalServiceClient(ch).EvaluateSteeringAsync(request, cancellationToken: ct).ResponseAsync);
        Say("## Steering transfer (paper section 7; lstsq stitch)\n\nDifference-of-means direction v at the stitch point, clamped h' = h + (z - <h, v>) v at every position " +
            "(docs/metrics.md \"Steering\"); greedy continuations of prompts from the other classes judged by a bag-of-words classifier.\n");
        Say(SteeringTables.Markdown(e));
        _json["steering"] = SteeringTables.Json(e);
    }

    /// <summary>Feature-level transfer (paper section 8) of the smallest width's SAE.</summary>
    private async Task FeaturesAsync(FitResult lstsq, SaeSet saes)
    {
        var request = s.Features.Clone();
        request.ModelA = s.ModelA;
        request.ModelB = s.ModelB;
        request.SaeA = saes.Source;
        request.SaeTransferred = saes.Transferred;
        request.Stitch = lstsq.Stitch;
        var e = await stages.OperationAsync<FeatureEvaluation>("features", S.Eval, request, ch => new EvalService.EvalServiceClient(ch).EvaluateFeaturesAsync(request, cancellationToken: ct).ResponseAsync);
        Say($"## Feature-level transfer (paper section 8; width-{saes.Width} SAE)\n\nDirect logit attribution of each latent (docs/metrics.md \"Feature-level transfer\") correlated between A and its transferred twin on B, against a random SAE transferred the same way.\n");
        Say(FeatureTables.Markdown(e));
        _json["features"] = FeatureTables.Json(e);
    }

    private static JsonObject StitchJson(FitResult f, string method) => new()
    {
        ["method"] = method, ["id"] = f.Stitch.Id, ["fvu_up"] = f.Metrics["fvu_up"], ["fvu_down"] = f.Metrics["fvu_down"],
        ["fvu_up_down"] = f.Metrics["fvu_up_down"], ["fvu_down_up"] = f.Metrics["fvu_down_up"], ["flops"] = f.Flops, ["seconds"] = f.Seconds,
    };

    private const int RotationBins = 40;

    /// <summary>Counts of values in RotationBins equal bins over [-1, 1] (1 falls in the last bin).</summary>
    private static JsonArray Counts(IEnumerable<float> cosines)
    {
        var counts = new long[RotationBins];
        foreach (var v in cosines) counts[Math.Clamp((int)Math.Floor((v + 1) / 2 * RotationBins), 0, RotationBins - 1)]++;
        return new JsonArray(counts.Select(n => (JsonNode)n).ToArray());
    }

    private static JsonArray CurveJson(IEnumerable<CurvePoint> points) => new(points.Select(p => (JsonNode)new JsonObject
    {
        ["flops"] = p.Flops, ["tokens"] = p.Tokens, ["explained_variance"] = p.ExplainedVariance,
    }).ToArray());

    private static string FlopText(double f) => f > 0 ? f.ToString("E2") : "not reached";
}
