using System.CommandLine;
using System.Text;
using Grpc.Core;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Sae.V1;
using Stitching.Contracts.Stitch.V1;
using Stitching.Core.Metrics;
using Stitching.Core.Tensors;
using Stitching.Zoo.Family;
using TorchSharp;

namespace Stitching.Cli.Commands;

/// <summary>
/// stitch paper: the main job. On the embedded Brown family (built on first run) it reproduces the
/// paper's pipeline end to end over gRPC: paired extraction, SVCCA layer matching, lstsq and Adam
/// stitches, the Table-1 spliced CE table, and SAE transfer: zero-shot quality on the large model and
/// warm start vs scratch (FLOPs to thresholds). Prints a markdown report and saves it under the store.
/// </summary>
public static class PaperCommand
{
    public static Command Create()
    {
        var family = new Option<string>("--family") { Description = "Zoo family: full (default) or ci (tiny, quick).", DefaultValueFactory = _ => "full" };
        family.AcceptOnlyFromAmong("full", "ci");
        var small = new Option<string?>("--small") { Description = "Model A (default: the family's smallest)." };
        var large = new Option<string?>("--large") { Description = "Model B (default: the family's largest)." };
        var tokens = new Option<long>("--tokens") { Description = "Training tokens extracted per model (default 262144; ci 65536)." };
        var widths = new Option<int[]>("--sae-widths") { Description = "SAE widths as multiples of d_B.", DefaultValueFactory = _ => [4, 8], AllowMultipleArgumentsPerToken = true };
        var k = new Option<int>("--k") { Description = "TopK active latents.", DefaultValueFactory = _ => 16 };
        var epochs = new Option<int>("--sae-epochs") { Description = "Passes of SAE training over the extracted tokens.", DefaultValueFactory = _ => 4 };
        var output = new Option<string?>("--out") { Description = "Report file (default {store}/reports/paper-FAMILY.md)." };
        var command = new Command("paper", "The main job: the paper's pipeline on the embedded Brown family, end to end, with a report.")
        {
            family, small, large, tokens, widths, k, epochs, output, ServerConnection.ServerOption, ServerConnection.StoreOption,
        };
        command.SetAction(async (parse, ct) =>
        {
            var spec = FamilySpec.Named(parse.GetValue(family)!);
            var paths = ZooCommand.Paths(parse);
            if (parse.GetValue(ServerConnection.ServerOption) is null)
                await Task.Run(() => ZooCommand.BuildFamily(spec, paths, ct), ct);
            var settings = new Settings(
                parse.GetValue(small) ?? spec.ModelName(spec.Sizes[0]), parse.GetValue(large) ?? spec.ModelName(spec.Sizes[^1]),
                parse.GetValue(tokens) is > 0 and var t ? t : spec.Name == "ci" ? 65536 : 262144, spec.Context,
                parse.GetValue(widths)!, parse.GetValue(k), parse.GetValue(epochs));
            return await ServerConnection.RunAsync(parse, ct, async c =>
            {
                var report = await new Run(c, settings, ct).ExecuteAsync();
                var path = parse.GetValue(output) ?? Path.Combine(Path.GetDirectoryName(paths.ModelsRoot)!, "reports", $"paper-{spec.Name}.md");
                Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
                await File.WriteAllTextAsync(path, report, ct);
                Console.WriteLine($"\nreport: {Path.GetFullPath(path)}");
                return 0;
            });
        });
        return command;
    }

    private sealed record Settings(string Small, string Large, long Tokens, int Context, int[] Widths, int K, int SaeEpochs);

    private sealed class Run(ServerConnection c, Settings s, CancellationToken ct)
    {
        private readonly StringBuilder _report = new();
        private readonly ActivationsService.ActivationsServiceClient _activations = new(c.Channel);
        private readonly StitchService.StitchServiceClient _stitch = new(c.Channel);
        private readonly SaeService.SaeServiceClient _sae = new(c.Channel);

        private void Say(string markdown)
        {
            Console.WriteLine(markdown);
            _report.AppendLine(markdown);
        }

        public async Task<string> ExecuteAsync()
        {
            var a = await _activations.DescribeModelAsync(new DescribeModelRequest { Model = new ModelSpec { Model = s.Small } }, cancellationToken: ct);
            var b = await _activations.DescribeModelAsync(new DescribeModelRequest { Model = new ModelSpec { Model = s.Large } }, cancellationToken: ct);
            Say($"# Stitching report: {a.Name} -> {b.Name}\n\nA = {a.Name} ({a.Layers} layers, d={a.Width}, {a.Parameters:N0} parameters); " +
                $"B = {b.Name} ({b.Layers} layers, d={b.Width}, {b.Parameters:N0} parameters). Training text: brown:train ({s.Tokens:N0} tokens per model), " +
                $"held-out text: brown:test; context {s.Context}.\n");

            // 1. paired extraction of every resid_pre, training and test splits
            string[] Pre(ModelInfo m) => Enumerable.Range(0, m.Layers).Select(l => $"blocks.{l}.hook_resid_pre").ToArray();
            var train = await ExtractAsync("brown:train", s.Tokens, Pre(a), Pre(b));
            var test = await ExtractAsync("brown:test", 64L * s.Context, Pre(a), Pre(b));

            // 2. layer matching
            var match = await _stitch.MatchLayersAsync(new MatchLayersRequest { ActivationSetA = train.ActivationSets[0], ActivationSetB = train.ActivationSets[1] }, cancellationToken: ct);
            var layerA = a.Layers / 2;
            var layerB = match.BestB[layerA];
            Say($"## Layer matching (SVCCA, {match.Tokens} tokens, {match.SvccaVariance:P0} variance kept; * = best B layer per A layer)\n\n```\n" +
                StitchTables.Matrix(match.HooksA, match.HooksB, match.Svcca, match.BestB) + "\n```\n\nLinear CKA:\n\n```\n" +
                StitchTables.Matrix(match.HooksA, match.HooksB, match.Cka, null) + $"\n```\n\nStitch point: A layer {layerA} (middle) -> B layer {layerB} (best SVCCA).\n");

            // 3. stitches: lstsq and the paper's Adam recipe on the same rows
            string hookA = $"blocks.{layerA}.hook_resid_pre", hookB = $"blocks.{layerB}.hook_resid_pre";
            var lstsq = await FitAsync(train, hookA, hookB, "lstsq");
            var adam = await FitAsync(train, hookA, hookB, "adam");
            var adamLong = await FitAsync(train, hookA, hookB, "adam", new AdamSettings { LearningRate = 1e-3, Epochs = 4 });
            Say("## Stitch fitting (held-out FVU and MSE)\n\n| method | FLOPs | seconds | FVU A->B | FVU B->A | FVU A->B->A | FVU B->A->B | MSE A->B | MSE B->A |\n|---|---|---|---|---|---|---|---|---|");
            foreach (var (label, f) in new[] { ("lstsq", lstsq), ("adam (paper: lr 1e-4, 2 epochs, alpha 1)", adam), ("adam (lr 1e-3, 4 epochs, alpha 1)", adamLong) })
                Say($"| {label} | {f.Flops:E2} | {f.Seconds:F2} | {f.Metrics["fvu_up"]:F4} | {f.Metrics["fvu_down"]:F4} | {f.Metrics["fvu_up_down"]:F4} | {f.Metrics["fvu_down_up"]:F4} | {f.Metrics["mse_up"]:G4} | {f.Metrics["mse_down"]:G4} |");
            Say("");

            // 4. Table 1: spliced next-token CE on held-out rows
            var rows = await ReadAsync(test.ActivationSets[0], ["token_ids"]);
            var ids = rows["token_ids"].reshape(-1, s.Context);
            var splice = await _stitch.EvaluateSpliceAsync(new EvaluateSpliceRequest
            {
                ModelA = new ModelSpec { Model = s.Small }, ModelB = new ModelSpec { Model = s.Large }, LayerA = layerA, LayerB = layerB,
                Stitch = lstsq.Stitch, TokenIds = TensorCodec.ToProto(TorchTensors.ToHost(ids, "token_ids")), MaxRows = (int)ids.shape[0],
            }, cancellationToken: ct);
            Say("## Spliced next-token cross-entropy (paper Table 1; lstsq stitch)\n\n| run | CE | clean CE of finisher | zero-ablation | mean-ablation | loss recovered |\n|---|---|---|---|---|---|");
            foreach (var r in splice.Rows)
                Say($"| {r.Run} | {r.Ce:F3} | {r.CleanCe:F3} | {r.ZeroAblationCe:F3} | {r.MeanAblationCe:F3} | {r.LossRecovered:F3} |");
            Say($"\n{splice.Sequences} rows, {splice.Tokens} tokens.\n");

            // 5. SAEs: train on A, transfer to B, zero-shot on held-out B, then warm start vs scratch on B
            var heldB = (await ReadAsync(test.ActivationSets[1], [hookB]))[hookB];
            Say($"## SAE transfer (TopK, k = {s.K}, Adam lr 1e-3, batch 1024, {s.SaeEpochs} passes over the training tokens)\n\n| width | source FVU on A | zero-shot FVU on B | zero-shot L0 | zero-shot dead % | threshold | scratch FLOPs | warm FLOPs (incl. stitch) | saving |\n|---|---|---|---|---|---|---|---|---|");
            var details = new StringBuilder();
            foreach (var m in s.Widths)
            {
                var width = m * b.Width;
                var sourceSae = await TrainSaeAsync(train.ActivationSets[0], hookA, width, null);
                var transferred = await _sae.TransferAsync(new TransferRequest { Sae = sourceSae.Ref, Stitch = lstsq.Stitch }, cancellationToken: ct);
                var zero = await ZeroShotAsync(transferred.Ref, heldB);
                // Warm start from the transfer with unit-norm decoder rows (encoder rescaled to match): the
                // trainer keeps decoder rows at unit norm, which would otherwise rescale the transfer at step 1.
                var unitRows = await _sae.TransferAsync(new TransferRequest { Sae = sourceSae.Ref, Stitch = lstsq.Stitch, RenormalizeDecoder = true }, cancellationToken: ct);
                var scratch = await TrainSaeAsync(train.ActivationSets[1], hookB, width, null);
                var warm = await TrainSaeAsync(train.ActivationSets[1], hookB, width, unitRows.Ref);
                var cmp = await _sae.CompareAsync(new CompareRequest { Scratch = scratch.Ref, Warm = warm.Ref }, cancellationToken: ct);
                foreach (var row in cmp.Rows)
                    Say($"| {width} | {sourceSae.Metrics.GetValueOrDefault("fvu", double.NaN):F3} | {zero.Fvu:F3} | {zero.L0:F1} | {zero.Dead * 100:F1} | EV {row.Threshold:F2} | {Flops(row.ScratchFlops)} | {Flops(row.WarmFlops)} | {(double.IsNaN(row.RelativeSaving) ? "n/a" : $"{row.RelativeSaving * 100:F1}%")} |");
                details.AppendLine($"- width {width}: FVU ~ A C^-beta: scratch beta {cmp.ScratchFit.Beta:F3}, warm beta {cmp.WarmFit.Beta:F3}; " +
                    $"cos(initial, final decoder rows): scratch {cmp.ScratchDecoderCosine:F3}, warm {cmp.WarmDecoderCosine:F3}; final EV scratch {cmp.ScratchFinalExplainedVariance:F3}, warm {cmp.WarmFinalExplainedVariance:F3}; stitch FLOPs {cmp.StitchFlops:E2}.");
            }
            Say("\n" + details);
            return _report.ToString();
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

        private async Task<SaeInfo> TrainSaeAsync(ArtifactRef set, string hook, int width, ArtifactRef? init)
        {
            Console.Error.WriteLine($"training a {width}-latent SAE on {set.Id} {hook}{(init is null ? "" : " from " + init.Id)}");
            var request = new TrainRequest
            {
                ActivationSet = set, Hook = hook, Sae = new SaeSpec { Architecture = "topk", DSae = width, K = s.K },
                BatchSize = 1024, Lr = 1e-3, Seed = 1, LogEvery = 5, Tokens = s.SaeEpochs * s.Tokens,
            };
            if (init is not null) request.Init = init;
            return await SaeCommand.TrainAsync(c, request, ct) ?? throw new RpcException(new Status(StatusCode.Internal, "SAE training failed (see above)"));
        }

        /// <summary>
        /// Zero-shot quality of a transferred SAE on held-out B activations (docs/metrics.md definitions),
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

        private static string Flops(double f) => f > 0 ? f.ToString("E2") : "not reached";
    }
}
