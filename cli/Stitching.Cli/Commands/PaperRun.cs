using System.Text;
using System.Text.Json.Nodes;
using Grpc.Core;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Sae.V1;
using Stitching.Contracts.Stitch.V1;
using Stitching.Core.Metrics;
using Stitching.Core.Tensors;
using TorchSharp;

namespace Stitching.Cli.Commands;

/// <summary>
/// The main job's pipeline over gRPC: paired extraction (brown:train, brown:test), layer matching,
/// lstsq and Adam stitches, the Table-1 spliced CE table, then per SAE width: a TopK SAE on A, its
/// transfer, zero-shot quality on held-out B, and B's SAE from scratch vs from the transfer, compared on a
/// fixed held-out batch. Returns the Markdown report and report.json (keys in docs/report.md).
/// </summary>
public sealed class PaperRun(ServerConnection c, PaperSettings s, CancellationToken ct)
{
    private readonly StringBuilder _md = new();
    private readonly JsonObject _json = new() { ["schema"] = "stitching.paper-report/1" };
    private readonly ActivationsService.ActivationsServiceClient _activations = new(c.Channel);
    private readonly StitchService.StitchServiceClient _stitch = new(c.Channel);
    private readonly SaeService.SaeServiceClient _sae = new(c.Channel);

    private void Say(string markdown)
    {
        Console.WriteLine(markdown);
        _md.AppendLine(markdown);
    }

    public async Task<(string Markdown, JsonObject Json)> ExecuteAsync()
    {
        var a = await _activations.DescribeModelAsync(new DescribeModelRequest { Model = new ModelSpec { Model = s.Small } }, cancellationToken: ct);
        var b = await _activations.DescribeModelAsync(new DescribeModelRequest { Model = new ModelSpec { Model = s.Large } }, cancellationToken: ct);
        Say($"# Stitching report: {a.Name} -> {b.Name}\n\nA = {a.Name} ({a.Layers} layers, d={a.Width}, {a.Parameters:N0} parameters); " +
            $"B = {b.Name} ({b.Layers} layers, d={b.Width}, {b.Parameters:N0} parameters). Training text: brown:train ({s.Tokens:N0} tokens per model), " +
            $"held-out text: brown:test ({PaperSettings.TestRows * s.Context:N0} tokens); context {s.Context}; documents interleaved across genres.\n");

        string[] Pre(ModelInfo m) => Enumerable.Range(0, m.Layers).Select(l => $"blocks.{l}.hook_resid_pre").ToArray();
        var train = await ExtractAsync("brown:train", s.Tokens, Pre(a), Pre(b));
        var test = await ExtractAsync("brown:test", (long)PaperSettings.TestRows * s.Context, Pre(a), Pre(b));

        var (layerA, layerB) = await MatchAsync(a, train);
        _json["pair"] = new JsonObject { ["a"] = a.Name, ["b"] = b.Name, ["layer_a"] = layerA, ["layer_b"] = layerB, ["width_a"] = a.Width, ["width_b"] = b.Width };
        string hookA = $"blocks.{layerA}.hook_resid_pre", hookB = $"blocks.{layerB}.hook_resid_pre";

        var lstsq = await FitAsync(train, hookA, hookB, "lstsq");
        var fits = new List<(string Label, FitResult Fit)> { ("lstsq (default)", lstsq) };
        if (s.AdamSteps > 0)
            fits.Add(($"adam (paper recipe: lr 1e-4, clip 1, cosine, alpha 1, zero init, {s.AdamSteps} steps of 4096 tokens)",
                await FitAsync(train, hookA, hookB, "adam", new AdamSettings { Steps = s.AdamSteps })));
        Say("## Stitch fitting (held-out FVU and MSE)\n\n| method | FLOPs | seconds | FVU A->B | FVU B->A | FVU A->B->A | FVU B->A->B | MSE A->B | MSE B->A |\n|---|---|---|---|---|---|---|---|---|");
        foreach (var (label, f) in fits)
            Say($"| {label} | {f.Flops:E2} | {f.Seconds:F2} | {f.Metrics["fvu_up"]:F4} | {f.Metrics["fvu_down"]:F4} | {f.Metrics["fvu_up_down"]:F4} | {f.Metrics["fvu_down_up"]:F4} | {f.Metrics["mse_up"]:G4} | {f.Metrics["mse_down"]:G4} |");
        Say("");
        _json["stitch"] = StitchJson(lstsq, "lstsq");
        _json["stitches"] = new JsonArray(fits.Select(f => (JsonNode)StitchJson(f.Fit, f.Fit.Method)).ToArray());

        await SpliceAsync(test, layerA, layerB, lstsq);
        var saes = await SaesAsync(b, train, test, hookA, hookB, lstsq);
        await SaeTableAsync(a, b, test, saes);
        await ProbesAsync(lstsq, saes[0]);
        await SteeringAsync(lstsq, hookA, hookB);
        await FeaturesAsync(lstsq, saes[0]);
        return (_md.ToString(), _json);
    }

    private async Task<(int LayerA, int LayerB)> MatchAsync(ModelInfo a, ExtractResult train)
    {
        var match = await _stitch.MatchLayersAsync(new MatchLayersRequest
        {
            ActivationSetA = train.ActivationSets[0], ActivationSetB = train.ActivationSets[1], Rule = s.Rule,
            // A one-layer model has no stream past its embeddings; only then are they candidates.
            IncludeEmbeddings = a.Layers < 2,
        }, cancellationToken: ct);
        var layerA = s.LayerA ?? (a.Layers < 2 ? 0 : Math.Max(1, a.Layers / 2));
        var rowA = match.HooksA.IndexOf($"blocks.{layerA}.hook_resid_pre");
        if (rowA < 0) throw new RpcException(new Status(StatusCode.InvalidArgument, $"--layer-a {layerA}: A has no candidate hook blocks.{layerA}.hook_resid_pre (candidates: {string.Join(", ", match.HooksA)})."));
        var chosen = match.BestB[rowA];
        var layerB = s.LayerB ?? int.Parse(match.HooksB[chosen].Split('.')[1]);
        string Table(string title, IReadOnlyList<double> values, bool star) => $"{title}:\n\n```\n{StitchTables.Matrix(match.HooksA, match.HooksB, values, star ? match.BestB : null)}\n```\n";
        Say($"## Layer matching ({match.Tokens} non-special tokens strided across the training set; halves by token id: {match.FitTokens} fit / {match.HeldoutTokens} held out; " +
            $"SVCCA keeps {match.SvccaVariance:P0} of the variance; embeddings (blocks.0) {(a.Layers < 2 ? "included: A has one layer" : "excluded")}; * = chosen by rule {match.Rule})\n");
        Say(Table("Held-out SVCCA", match.HeldoutSvcca, match.Rule == "heldout_svcca"));
        Say(Table("Held-out least-squares FVU A->B", match.FvuUp, false));
        Say(Table("Held-out least-squares FVU B->A", match.FvuDown, false));
        Say(Table("In-sample SVCCA (the paper's criterion)", match.Svcca, match.Rule == "svcca"));
        Say(Table("Linear CKA", match.Cka, false));
        Say($"Stitch point: A layer {layerA}{(s.LayerA is null ? " (middle)" : " (given)")} -> B layer {layerB}{(s.LayerB is null ? $" (rule {match.Rule})" : " (given)")}.\n");
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
            ["criteria"] = criteria, ["chosen_by"] = s.LayerB is null ? match.Rule : "given", ["hook_a"] = match.HooksA[rowA],
            ["tokens"] = match.Tokens, ["fit_tokens"] = match.FitTokens, ["heldout_tokens"] = match.HeldoutTokens, ["svcca_variance"] = match.SvccaVariance,
        };
        return (layerA, layerB);
    }

    private async Task SpliceAsync(ExtractResult test, int layerA, int layerB, FitResult lstsq)
    {
        var rows = await ReadAsync(test.ActivationSets[0], ["token_ids"]);
        var ids = rows["token_ids"].reshape(-1, s.Context)[..PaperSettings.SpliceRows];
        var splice = await _stitch.EvaluateSpliceAsync(new EvaluateSpliceRequest
        {
            ModelA = new ModelSpec { Model = s.Small }, ModelB = new ModelSpec { Model = s.Large }, LayerA = layerA, LayerB = layerB,
            Stitch = lstsq.Stitch, TokenIds = TensorCodec.ToProto(TorchTensors.ToHost(ids, "token_ids")), MaxRows = (int)ids.shape[0],
        }, cancellationToken: ct);
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

    /// <summary>The SAEs of one width: trained on A, its transfer, B's from scratch.</summary>
    private sealed record SaeSet(int Width, ArtifactRef Source, ArtifactRef Transferred, ArtifactRef Scratch, ArtifactRef Warm);

    /// <summary>
    /// The paper's Table 2 on the held-out rows (brown:test): each width's source SAE on A, its zero-shot transfer, B's
    /// scratch and warm SAEs, and a random SAE of the same shape on B (seed = width) as the floor (docs/metrics.md "SAE evaluation").
    /// </summary>
    private async Task SaeTableAsync(ModelInfo a, ModelInfo b, ExtractResult test, List<SaeSet> saes)
    {
        Console.Error.WriteLine("SAE evaluation (Table 2)");
        var rows = await ReadAsync(test.ActivationSets[0], ["token_ids"]);
        var ids = TensorCodec.ToProto(TorchTensors.ToHost(rows["token_ids"].reshape(-1, s.Context), "token_ids"));
        var eval = new Contracts.Eval.V1.EvalService.EvalServiceClient(c.Channel);
        var list = new JsonArray();
        var md = new StringBuilder();
        foreach (var set in saes)
            foreach (var (label, model, sae, random) in new[]
                     {
                         ("source", a, set.Source, false), ("transfer", b, set.Transferred, false), ("scratch", b, set.Scratch, false),
                         ("warm", b, set.Warm, false), ("random", b, set.Scratch, true),
                     })
            {
                var request = new Contracts.Eval.V1.EvaluateSaeRequest { Model = new ModelSpec { Model = model.Name }, Sae = sae, TokenIds = ids };
                if (random) request.Random = new Contracts.Eval.V1.RandomSae { Seed = (ulong)set.Width };
                var r = await eval.EvaluateSaeAsync(request, cancellationToken: ct);
                md.AppendLine(SaeTables.Row(label, model.Name, set.Width, r));
                var json = SaeTables.Json(r, random ? $"random (seed {set.Width}, shape of {sae.Id})" : sae.Id);
                json["label"] = label;
                json["model"] = model.Name;
                json["width"] = set.Width;
                list.Add(json);
            }
        var first = (JsonObject)list[0]!;
        Say($"## SAE evaluation on held-out text (paper Table 2; brown:test, {first["tokens"]} non-BOS tokens, {first["predicted_tokens"]} next-token predictions)\n\n" +
            "Each SAE's reconstruction replaces its hook (BOS positions keep their clean value); CE in nats; loss recovered against zero ablation / mean ablation " +
            "(docs/metrics.md \"SAE evaluation\"). transfer = the source SAE through the stitch with no training on B; random = a random SAE of the same shape " +
            "(seeded unit decoder rows, encoder = decoder^T, b_dec = the hook's mean on these tokens), the floor.\n");
        Say(SaeTables.Header);
        Say(md.ToString());
        _json["sae_eval"] = list;
    }

    /// <summary>
    /// Probe transfer (paper section 6) with the smallest width's SAEs and the lstsq stitch: brown:pos at the
    /// default budget, brown:genre with a budget covering its whole validation and test splits (a document-level
    /// example is a row, so the default budget would leave a few hundred).
    /// </summary>
    private async Task ProbesAsync(FitResult lstsq, SaeSet saes)
    {
        Say($"## Probe transfer (paper section 6; width-{saes.Width} SAEs, lstsq stitch)\n\n" +
            "Logistic probes (docs/metrics.md \"Probes\"): dense on A and B, A's dense probe moved to B through P_down, and sparse probes on the top-k " +
            "latents of A's SAE, reused on the transferred SAE without retraining and retrained, against B's own SAE (trained from scratch) and random latents.\n");
        var list = new JsonArray();
        foreach (var (named, budget) in new[] { ("brown:pos", 0L), ("brown:genre", 131072L) })
        {
            Console.Error.WriteLine($"probes on {named}");
            var e = await EvalCommand.RunProbesAsync(c, new Contracts.Eval.V1.EvaluateProbesRequest
            {
                ModelA = new ModelSpec { Model = s.Small }, ModelB = new ModelSpec { Model = s.Large }, Stitch = lstsq.Stitch,
                SaeA = saes.Source, SaeTransferred = saes.Transferred, SaeB = saes.Scratch,
                Dataset = new Contracts.Eval.V1.ProbeDataset { Named = named }, MaxTokensPerSplit = budget,
            }, ct);
            Say(ProbeTables.Markdown(e));
            list.Add(ProbeTables.Json(e));
        }
        _json["probes"] = list;
    }

    /// <summary>Steering transfer (paper section 7) on brown:genre: towards imaginative prose, from informative prompts, at the stitch points.</summary>
    private async Task SteeringAsync(FitResult lstsq, string hookA, string hookB)
    {
        Console.Error.WriteLine("steering on brown:genre");
        var e = await EvalCommand.RunSteeringAsync(c, new Contracts.Eval.V1.EvaluateSteeringRequest
        {
            ModelA = new ModelSpec { Model = s.Small }, ModelB = new ModelSpec { Model = s.Large }, Stitch = lstsq.Stitch, HookA = hookA, HookB = hookB,
        }, ct);
        Say("## Steering transfer (paper section 7; lstsq stitch)\n\nDifference-of-means direction v at the stitch point, clamped h' = h + (z - <h, v>) v at every position " +
            "(docs/metrics.md \"Steering\"); greedy continuations of informative-prose prompts judged by a bag-of-words classifier.\n");
        Say(SteeringTables.Markdown(e));
        _json["steering"] = SteeringTables.Json(e);
    }

    /// <summary>Feature-level transfer (paper section 8) of the smallest width's SAE.</summary>
    private async Task FeaturesAsync(FitResult lstsq, SaeSet saes)
    {
        Console.Error.WriteLine("feature-level transfer");
        var e = await EvalCommand.RunFeaturesAsync(c, new Contracts.Eval.V1.EvaluateFeaturesRequest
        {
            ModelA = new ModelSpec { Model = s.Small }, ModelB = new ModelSpec { Model = s.Large }, SaeA = saes.Source, SaeTransferred = saes.Transferred, Stitch = lstsq.Stitch,
        }, ct);
        Say($"## Feature-level transfer (paper section 8; width-{saes.Width} SAE)\n\nDirect logit attribution of each latent (docs/metrics.md \"Feature-level transfer\") correlated between A and its transferred twin on B, against a random SAE transferred the same way.\n");
        Say(FeatureTables.Markdown(e));
        _json["features"] = FeatureTables.Json(e);
    }

    private async Task<List<SaeSet>> SaesAsync(ModelInfo b, ExtractResult train, ExtractResult test, string hookA, string hookB, FitResult lstsq)
    {
        var sets = new List<SaeSet>();
        // B's held-out rows without the special (BOS) tokens, as every other reconstruction number here.
        var heldSet = await ReadAsync(test.ActivationSets[1], [hookB, "special"]);
        var heldB = heldSet[hookB].index_select(0, heldSet["special"].eq(0).nonzero().squeeze(1));
        Say($"## SAE transfer and warm start (TopK k = {s.K}, Adam lr {PaperSettings.SaeLr:G}, batch {PaperSettings.SaeBatch}, {s.SaeEpochs} passes over the training tokens; " +
            "inputs scaled so E||x||^2 = d; b_dec subtracted from inputs; unit-norm decoder rows)\n");
        Say("Explained variance (EV) is measured on a fixed held-out batch of B's brown:test activations. 'Random' is scratch's initial SAE, 'init' the exact warm-start " +
            "initialisation (transfer, re-scaled, unit-norm decoder rows). FLOPs include the stitch's for the warm run.\n");
        Say("| width | source FVU on A (held out) | zero-shot FVU on B | zero-shot L0 | zero-shot dead % | init FVU | random FVU | scratch final EV | warm final EV |\n|---|---|---|---|---|---|---|---|---|");
        var savingsMd = new StringBuilder("\n| width | threshold | EV | scratch FLOPs | warm FLOPs | saving |\n|---|---|---|---|---|---|\n");
        var details = new StringBuilder();
        var list = new JsonArray();
        foreach (var m in s.Widths)
        {
            var width = m * b.Width;
            var sourceSae = await TrainSaeAsync(train.ActivationSets[0], test.ActivationSets[0], hookA, width, null);
            var transferred = await _sae.TransferAsync(new TransferRequest { Sae = sourceSae.Ref, Stitch = lstsq.Stitch }, cancellationToken: ct);
            var zero = await ZeroShotAsync(transferred.Ref, heldB);
            var scratch = await TrainSaeAsync(train.ActivationSets[1], test.ActivationSets[1], hookB, width, null);
            var warm = await TrainSaeAsync(train.ActivationSets[1], test.ActivationSets[1], hookB, width, transferred.Ref);
            var cmp = await _sae.CompareAsync(new CompareRequest { Scratch = scratch.Ref, Warm = warm.Ref }, cancellationToken: ct);
            sets.Add(new SaeSet(width, sourceSae.Ref, transferred.Ref, scratch.Ref, warm.Ref));
            Say($"| {width} | {sourceSae.Metrics["heldout_fvu"]:F3} | {zero.Fvu:F3} | {zero.L0:F1} | {zero.Dead * 100:F1} | {1 - cmp.WarmInitialExplainedVariance:F3} | " +
                $"{1 - cmp.ScratchInitialExplainedVariance:F3} | {cmp.ScratchFinalExplainedVariance:F3} | {cmp.WarmFinalExplainedVariance:F3} |");
            var savings = new JsonArray();
            foreach (var row in cmp.Rows)
            {
                var label = row.RelativeToScratchFinal ? $"{row.Threshold:P0} of scratch final" : $"EV {row.Threshold:F2}";
                savingsMd.AppendLine($"| {width} | {label} | {row.ExplainedVariance:F3} | {Flops(row.ScratchFlops)} | {Flops(row.WarmFlops)} | {(double.IsNaN(row.RelativeSaving) ? "n/a" : $"{row.RelativeSaving * 100:F1}%")} |");
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
                ["width"] = width, ["k"] = s.K, ["source_fvu"] = sourceSae.Metrics["heldout_fvu"], ["zero_shot_fvu"] = zero.Fvu, ["zero_shot_l0"] = zero.L0, ["zero_shot_dead_fraction"] = zero.Dead,
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
            });
        }
        Say(savingsMd.ToString());
        Say(details.ToString());
        _json["sae"] = list;
        return sets;
    }

    private async Task<ExtractResult> ExtractAsync(string corpus, long tokens, string[] hooksA, string[] hooksB)
    {
        var request = new ExtractRequest
        {
            Corpus = new CorpusSpec { Named = corpus }, Tokens = new TokenSetSpec { ContextLength = s.Context, MaxTokens = tokens, BosPolicy = BosPolicy.Never },
            BatchSize = 16, ShardTokens = 65536,
            Models = { new ModelHooks { Model = new ModelSpec { Model = s.Small }, Hooks = { hooksA } }, new ModelHooks { Model = new ModelSpec { Model = s.Large }, Hooks = { hooksB } } },
        };
        Console.Error.WriteLine($"extracting {corpus}");
        var done = await ProgressBar.FollowAsync(c, await _activations.ExtractAsync(request, cancellationToken: ct), ct);
        return done.State == OperationState.Succeeded ? done.Result.Unpack<ExtractResult>() : throw Failed(done);
    }

    private async Task<FitResult> FitAsync(ExtractResult train, string hookA, string hookB, string method, AdamSettings? adam = null)
    {
        Console.Error.WriteLine($"fitting the {method} stitch");
        var request = new FitRequest
        {
            A = new ActivationSource { Artifact = train.ActivationSets[0], Tensor = hookA },
            B = new ActivationSource { Artifact = train.ActivationSets[1], Tensor = hookB }, Method = method,
        };
        if (adam is not null) request.Adam = adam;
        var done = await ProgressBar.FollowAsync(c, await _stitch.FitAsync(request, cancellationToken: ct), ct);
        return done.State == OperationState.Succeeded ? done.Result.Unpack<FitResult>() : throw Failed(done);
    }

    private static JsonObject StitchJson(FitResult f, string method) => new()
    {
        ["method"] = method, ["id"] = f.Stitch.Id, ["fvu_up"] = f.Metrics["fvu_up"], ["fvu_down"] = f.Metrics["fvu_down"],
        ["fvu_up_down"] = f.Metrics["fvu_up_down"], ["fvu_down_up"] = f.Metrics["fvu_down_up"], ["flops"] = f.Flops, ["seconds"] = f.Seconds,
    };

    private async Task<SaeInfo> TrainSaeAsync(ArtifactRef set, ArtifactRef heldOut, string hook, int width, ArtifactRef? init)
    {
        Console.Error.WriteLine($"training a {width}-latent SAE on {set.Id} {hook}{(init is null ? "" : " from " + init.Id)}");
        var request = new TrainRequest
        {
            ActivationSet = set, Hook = hook, Sae = new SaeSpec { Architecture = "topk", DSae = width, K = s.K },
            BatchSize = PaperSettings.SaeBatch, Lr = PaperSettings.SaeLr, Seed = 1, LogEvery = 5, Tokens = s.SaeEpochs * s.Tokens, EvalActivationSet = heldOut,
        };
        if (init is not null) request.Init = init;
        return await SaeCommand.TrainAsync(c, request, ct) ?? throw new RpcException(new Status(StatusCode.Internal, "SAE training failed (see above)"));
    }

    /// <summary>
    /// Zero-shot quality of the exact transfer on held-out B activations (docs/metrics.md definitions),
    /// encoded and decoded in chunks that keep every message under the server's size limit.
    /// </summary>
    private async Task<(double Fvu, double L0, double Dead)> ZeroShotAsync(ArtifactRef sae, torch.Tensor x)
    {
        var latents = new List<torch.Tensor>();
        var reconstructions = new List<torch.Tensor>();
        foreach (var chunk in x.split(512))
        {
            var encoded = await _sae.EncodeAsync(new EncodeRequest { Sae = sae, Activations = TensorCodec.ToProto(TorchTensors.ToHost(chunk, "x")) }, cancellationToken: ct);
            var decoded = await _sae.DecodeAsync(new DecodeRequest { Sae = sae, Latents = encoded.Latents }, cancellationToken: ct);
            latents.Add(TorchTensors.ToTorch(TensorCodec.FromProto(encoded.Latents)));
            reconstructions.Add(TorchTensors.ToTorch(TensorCodec.FromProto(decoded.Reconstruction)));
        }
        var f = torch.cat(latents, 0);
        var dead = 1 - SparsityMetrics.Fired(f).to(torch.ScalarType.Float64).mean().item<double>();
        return (ReconstructionMetrics.Fvu(x, torch.cat(reconstructions, 0)), SparsityMetrics.L0(f), dead);
    }

    /// <summary>Named tensors of every shard of an activation set, concatenated.</summary>
    private async Task<Dictionary<string, torch.Tensor>> ReadAsync(ArtifactRef set, string[] names)
    {
        using var call = _activations.ReadActivations(new ReadActivationsRequest { ActivationSet = set, Names = { names } }, cancellationToken: ct);
        var parts = new Dictionary<string, List<torch.Tensor>>();
        var assembler = new TensorAssembler();
        await foreach (var chunk in call.ResponseStream.ReadAllAsync(ct))
            if (assembler.Add(chunk) is { } t)
            {
                if (!parts.TryGetValue(t.Name, out var list)) parts[t.Name] = list = [];
                list.Add(TorchTensors.ToTorch(t));
            }
        return parts.ToDictionary(p => p.Key, p => torch.cat(p.Value, 0));
    }

    private static RpcException Failed(Operation op) =>
        new(new Status(StatusCode.Internal, $"operation {op.Id} ({op.Kind}) ended {op.State}: {op.Error?.Code} {op.Error?.Message}"));

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

    private static string Flops(double f) => f > 0 ? f.ToString("E2") : "not reached";
}
