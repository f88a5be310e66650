using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Eval.V1;
using Stitching.Contracts.Sae.V1;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;

using Stitching.Eval.Reports;

namespace Stitching.Cli.Commands;

/// <summary>stitch eval sae: the eval service from the command line (docs/metrics.md "SAE evaluation").</summary>
public static class EvalCommand
{
    public static Command Create() => new("eval", "Evaluate SAEs on held-out tokens, and probe, steering and feature-level transfer between two models; render reports.")
    {
        Sae(), Probes(), Steering(), Features(), ReportCommand.Create(),
    };

    private static Command Features()
    {
        var modelA = new Option<string>("--model-a") { Description = "Model A.", Required = true };
        var modelB = new Option<string>("--model-b") { Description = "Model B (same tokenizer).", Required = true };
        var saeA = new Option<string>("--sae-a") { Description = "A's SAE.", Required = true };
        var saeX = new Option<string>("--sae-transferred") { Description = "Its transfer to B.", Required = true };
        var stitch = new Option<string>("--stitch") { Description = "The stitch of the transfer (the random baseline uses it too).", Required = true };
        var tokens = new Option<long>("--tokens") { Description = $"Held-out tokens (default {Eval.Features.FeatureSettings.Defaults.MaxTokens})." };
        var sentences = new Option<int>("--sentences") { Description = $"Rewrite sentences (default {Eval.Features.FeatureSettings.Defaults.Sentences})." };
        var seed = new Option<ulong>("--seed") { Description = "Seed of draws, rewrites and the random SAE (default 0)." };
        var command = new Command("features", "Feature-level transfer (paper section 8): attribution correlation per latent, structural vs semantic vs a random SAE.")
        {
            modelA, modelB, saeA, saeX, stitch, tokens, sentences, seed, ReportCommand.ReportOption,
        };
        command.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var result = await RunFeaturesAsync(c, new EvaluateFeaturesRequest
            {
                ModelA = new ModelSpec { Model = ModelArg(parse.GetValue(modelA)!) }, ModelB = new ModelSpec { Model = ModelArg(parse.GetValue(modelB)!) },
                SaeA = Ref(parse.GetValue(saeA), "sae"), SaeTransferred = Ref(parse.GetValue(saeX), "sae"), Stitch = Ref(parse.GetValue(stitch), "stitch"),
                MaxTokens = parse.GetValue(tokens), Sentences = parse.GetValue(sentences), Seed = parse.GetValue(seed),
            }, ct);
            CliOutput.Print(parse, FeatureTables.Json(result), () => Console.WriteLine(FeatureTables.Markdown(result)));
            ReportCommand.WriteIfAsked(parse, "Feature-level transfer", FeatureTables.Markdown(result), FeatureTables.Json(result));
            return 0;
        }));
        return command;
    }

    /// <summary>Starts EvaluateFeatures and follows the operation to its result.</summary>
    public static async Task<FeatureEvaluation> RunFeaturesAsync(ServerConnection c, EvaluateFeaturesRequest request, CancellationToken ct) =>
        await ResultAsync<FeatureEvaluation>(c, await new EvalService.EvalServiceClient(c.Channel).EvaluateFeaturesAsync(request, cancellationToken: ct), ct);

    private static Command Steering()
    {
        var modelA = new Option<string>("--model-a") { Description = "Model A (store name, folder or org/name).", Required = true };
        var modelB = new Option<string>("--model-b") { Description = "Model B.", Required = true };
        var stitch = new Option<string>("--stitch") { Description = "Stitch artifact id (A's direction moves to B through P_up).", Required = true };
        var hookA = new Option<string>("--hook-a") { Description = "Hook on A (the stitch's).", Required = true };
        var hookB = new Option<string>("--hook-b") { Description = "Hook on B (the stitch's).", Required = true };
        var dataset = new Option<string?>("--dataset") { Description = "A named document-level set (default brown:genre: steer towards imaginative prose)." };
        var jsonl = new Option<string?>("--jsonl") { Description = "Labelled texts {\"text\", \"label\", \"split\"?} (document level)." };
        var target = new Option<int>("--target") { Description = $"Class id of the concept (default {Eval.Steering.SteeringSettings.Defaults.Target})." };
        var prompts = new Option<int>("--prompts") { Description = $"Prompts (default {Eval.Steering.SteeringSettings.Defaults.Prompts})." };
        var newTokens = new Option<int>("--new-tokens") { Description = $"Tokens generated per prompt (default {Eval.Steering.SteeringSettings.Defaults.NewTokens})." };
        var seed = new Option<ulong>("--seed") { Description = "Seed of row and prompt draws (default 0)." };
        var command = new Command("steering", "Steering-vector transfer (paper section 7): clamp a difference-of-means direction on A, on B, and A's moved to B; judge the generations.")
        {
            modelA, modelB, stitch, hookA, hookB, dataset, jsonl, target, prompts, newTokens, seed, ReportCommand.ReportOption,
        };
        command.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var request = new EvaluateSteeringRequest
            {
                ModelA = new ModelSpec { Model = ModelArg(parse.GetValue(modelA)!) }, ModelB = new ModelSpec { Model = ModelArg(parse.GetValue(modelB)!) },
                Stitch = Ref(parse.GetValue(stitch), "stitch"), HookA = parse.GetValue(hookA)!, HookB = parse.GetValue(hookB)!,
                Target = parse.GetValue(target), Prompts = parse.GetValue(prompts), NewTokens = parse.GetValue(newTokens), Seed = parse.GetValue(seed),
                Dataset = parse.GetValue(jsonl) is { } file ? ReadJsonl(file) : parse.GetValue(dataset) is { } named ? new ProbeDataset { Named = named } : null,
            };
            var result = await RunSteeringAsync(c, request, ct);
            CliOutput.Print(parse, SteeringTables.Json(result), () => Console.WriteLine(SteeringTables.Markdown(result)));
            ReportCommand.WriteIfAsked(parse, "Steering transfer", SteeringTables.Markdown(result), SteeringTables.Json(result));
            return 0;
        }));
        return command;
    }

    /// <summary>Starts EvaluateSteering and follows the operation to its result.</summary>
    public static async Task<SteeringEvaluation> RunSteeringAsync(ServerConnection c, EvaluateSteeringRequest request, CancellationToken ct)
    {
        return await ResultAsync<SteeringEvaluation>(c, await new EvalService.EvalServiceClient(c.Channel).EvaluateSteeringAsync(request, cancellationToken: ct), ct);
    }

    /// <summary>Follows a started operation (progress on stderr) and unpacks its result, or fails with its error.</summary>
    private static async Task<T> ResultAsync<T>(ServerConnection c, Operation started, CancellationToken ct) where T : Google.Protobuf.IMessage, new()
    {
        var done = await ProgressBar.FollowAsync(c, started, ct);
        return done.State == OperationState.Succeeded ? done.Result.Unpack<T>()
            : throw new Grpc.Core.RpcException(new Grpc.Core.Status(Grpc.Core.StatusCode.FailedPrecondition, $"operation {done.Id} ({done.Kind}) ended {done.State}: {done.Error?.Code} {done.Error?.Message}"));
    }

    private static ArtifactRef? Ref(string? id, string kind) => string.IsNullOrEmpty(id) ? null : new ArtifactRef { Kind = kind, Id = id };

    private static string ModelArg(string m) => Directory.Exists(m) ? Path.GetFullPath(m) : m;

    private static Command Probes()
    {
        var modelA = new Option<string>("--model-a") { Description = "Model A (store name, folder or org/name).", Required = true };
        var modelB = new Option<string>("--model-b") { Description = "Model B.", Required = true };
        var stitch = new Option<string?>("--stitch") { Description = "Stitch artifact id (A's dense probe moves to B through P_down)." };
        var saeA = new Option<string?>("--sae-a") { Description = "A's SAE (sparse probes pick their latents on it)." };
        var saeX = new Option<string?>("--sae-transferred") { Description = "Its transfer to B (stitch sae transfer)." };
        var saeB = new Option<string?>("--sae-b") { Description = "An SAE trained on B (the native baseline)." };
        var hookA = new Option<string?>("--hook-a") { Description = "Hook on A (default: sae-a's)." };
        var hookB = new Option<string?>("--hook-b") { Description = "Hook on B (default: sae-transferred's)." };
        var dataset = new Option<string?>("--dataset") { Description = "A named set: brown:pos (token level) or brown:genre (document level)." };
        var jsonl = new Option<string?>("--jsonl") { Description = "Labelled texts, one JSON object per line: {\"text\", \"label\"} (document level) or {\"text\", \"spans\": [[start, end, label], ...]} (token level); labels are ints or strings; optional \"split\": train|validation|test." };
        var k = new Option<int[]>("--k") { Description = $"Latents per sparse probe (default {string.Join(",", Eval.Probes.ProbeSettings.Defaults.Ks)}).", AllowMultipleArgumentsPerToken = true };
        var budget = new Option<long>("--tokens-per-split") { Description = $"Token budget per split and model (default {Eval.Probes.ProbeSettings.Defaults.MaxTokensPerSplit})." };
        var perClass = new Option<int>("--per-class") { Description = $"Examples per class per split after balancing (default {Eval.Probes.ProbeSettings.Defaults.MaxPerClass})." };
        var seed = new Option<ulong>("--seed") { Description = "Seed of row draws, balancing and random latents (default 0)." };
        var command = new Command("probes", "Probe transfer (paper section 6): dense and top-k SAE-latent logistic probes on A, moved to B, against native and random baselines.")
        {
            modelA, modelB, stitch, saeA, saeX, saeB, hookA, hookB, dataset, jsonl, k, budget, perClass, seed, ReportCommand.ReportOption,
        };
        command.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var request = new EvaluateProbesRequest
            {
                ModelA = new ModelSpec { Model = ModelArg(parse.GetValue(modelA)!) }, ModelB = new ModelSpec { Model = ModelArg(parse.GetValue(modelB)!) },
                Stitch = Ref(parse.GetValue(stitch), "stitch"), SaeA = Ref(parse.GetValue(saeA), "sae"), SaeTransferred = Ref(parse.GetValue(saeX), "sae"),
                SaeB = Ref(parse.GetValue(saeB), "sae"), HookA = parse.GetValue(hookA) ?? "", HookB = parse.GetValue(hookB) ?? "",
                MaxTokensPerSplit = parse.GetValue(budget), MaxExamplesPerClass = parse.GetValue(perClass), Seed = parse.GetValue(seed),
                Dataset = parse.GetValue(jsonl) is { } file ? ReadJsonl(file) : new ProbeDataset { Named = parse.GetValue(dataset) ?? "" },
            };
            request.K.AddRange(parse.GetValue(k) ?? []);
            var result = await RunProbesAsync(c, request, ct);
            CliOutput.Print(parse, ProbeTables.Json(result), () => Console.WriteLine(ProbeTables.Markdown(result)));
            ReportCommand.WriteIfAsked(parse, $"Probe transfer ({result.Dataset})", ProbeTables.Markdown(result), ProbeTables.Json(result));
            return 0;
        }));
        return command;
    }

    /// <summary>Starts EvaluateProbes and follows the operation to its result.</summary>
    public static async Task<ProbeEvaluation> RunProbesAsync(ServerConnection c, EvaluateProbesRequest request, CancellationToken ct)
    {
        return await ResultAsync<ProbeEvaluation>(c, await new EvalService.EvalServiceClient(c.Channel).EvaluateProbesAsync(request, cancellationToken: ct), ct);
    }

    /// <summary>
    /// A jsonl file of labelled texts as a ProbeDataset. String labels become class ids in sorted order (the
    /// names travel as class_names); a missing split leaves the server's assignment by position.
    /// </summary>
    public static ProbeDataset ReadJsonl(string path)
    {
        var lines = File.ReadLines(path).Select((l, i) => (Line: l, Number: i + 1)).Where(p => p.Line.Trim().Length > 0).ToList();
        var docs = lines.Select(p =>
        {
            try { return (JsonDocument.Parse(p.Line).RootElement, p.Number); }
            catch (JsonException e) { throw new ArgumentException($"--jsonl {path}:{p.Number}: not JSON ({e.Message})."); }
        }).ToList();
        var names = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var (e, _) in docs)
        {
            if (e.TryGetProperty("label", out var l) && l.ValueKind == JsonValueKind.String) names.Add(l.GetString()!);
            if (e.TryGetProperty("spans", out var sp)) foreach (var s in sp.EnumerateArray()) if (s.GetArrayLength() == 3 && s[2].ValueKind == JsonValueKind.String) names.Add(s[2].GetString()!);
        }
        var ids = names.Select((n, i) => (n, i)).ToDictionary(p => p.n, p => p.i);
        int Label(JsonElement v, int line) => v.ValueKind switch
        {
            JsonValueKind.String => ids[v.GetString()!],
            JsonValueKind.Number when v.TryGetInt32(out var i) => i,
            _ => throw new ArgumentException($"--jsonl {path}:{line}: a label is a string or an integer."),
        };
        var set = new ProbeDataset();
        set.ClassNames.AddRange(names);
        foreach (var (e, line) in docs)
        {
            if (!e.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.String) throw new ArgumentException($"--jsonl {path}:{line}: needs a string \"text\".");
            var example = new LabelledText { Text = text.GetString()!, Label = -1, Split = e.TryGetProperty("split", out var split) ? split.GetString() ?? "" : "" };
            if (e.TryGetProperty("spans", out var spans))
                foreach (var s in spans.EnumerateArray())
                {
                    if (s.ValueKind != JsonValueKind.Array || s.GetArrayLength() != 3) throw new ArgumentException($"--jsonl {path}:{line}: a span is [start, end, label].");
                    example.Spans.Add(new LabelSpan { Start = s[0].GetInt32(), End = s[1].GetInt32(), Label = Label(s[2], line) });
                }
            else if (e.TryGetProperty("label", out var label)) example.Label = Label(label, line);
            else throw new ArgumentException($"--jsonl {path}:{line}: needs \"label\" or \"spans\".");
            set.Examples.Add(example);
        }
        return set;
    }

    private static Command Sae()
    {
        var model = new Option<string>("--model") { Description = "The model the SAE reads (store name, folder or org/name).", Required = true };
        var sae = new Option<string>("--sae") { Description = "SAE artifact id, or a local SAELens folder (imported first).", Required = true };
        var hook = new Option<string?>("--hook") { Description = "Hook the SAE reads (default: the SAE's own)." };
        var tokens = new Option<string>("--tokens") { Description = "A .safetensors file with an int32/int64 tensor token_ids [rows, T].", Required = true };
        var batch = new Option<int>("--batch") { Description = $"Rows per forward pass (default {Eval.EvalGrpcService.DefaultBatchSize})." };
        var rows = new Option<int>("--rows") { Description = "Rows of the file evaluated (default all)." };
        var random = new Option<ulong?>("--random") { Description = "Evaluate a random SAE of --sae's shape with this seed instead (Table 2's floor; docs/metrics.md)." };
        var command = new Command("sae", "An SAE on held-out token rows: L0, MSE, FVU, explained variance, CE clean / spliced / ablated, loss recovered, KL.")
        {
            model, sae, hook, tokens, batch, rows, random, ReportCommand.ReportOption,
        };
        command.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            using var reader = SafetensorsReader.Open(parse.GetValue(tokens)!);
            var ids = reader.Require("token_ids", "--tokens", "give a file with a tensor token_ids [rows, T].");
            var saeArg = parse.GetValue(sae)!;
            var saeRef = new ArtifactRef { Kind = "sae", Id = saeArg };
            if (Directory.Exists(saeArg))
                saeRef = (await new SaeService.SaeServiceClient(c.Channel).ImportAsync(new ImportRequest { Path = Path.GetFullPath(saeArg) }, cancellationToken: ct)).Ref;
            var modelArg = parse.GetValue(model)!;
            var request = new EvaluateSaeRequest
            {
                Model = new ModelSpec { Model = ModelArg(modelArg) },
                Sae = saeRef, Hook = parse.GetValue(hook) ?? "", TokenIds = TensorCodec.ToProto(ids), BatchSize = parse.GetValue(batch), MaxRows = parse.GetValue(rows),
            };
            if (parse.GetValue(random) is { } seed) request.Random = new RandomSae { Seed = seed };
            var r = await new EvalService.EvalServiceClient(c.Channel).EvaluateSaeAsync(request, cancellationToken: ct);
            var values = SaeTables.Json(r, saeRef.Id);
            if (request.Random is not null) values["random_seed"] = request.Random.Seed;
            CliOutput.Print(parse, values, () =>
            {
                Console.WriteLine($"{(request.Random is null ? "SAE" : $"random SAE (seed {request.Random.Seed}) of the shape of")} {saeRef.Id} at {r.Hook} on {r.Tokens} tokens ({r.Rows} rows; BOS excluded)");
                Console.WriteLine("| metric | value |\n|---|---|");
                foreach (var (k, v) in values.Where(p => p.Value is JsonValue jv && jv.TryGetValue<double>(out _))) Console.WriteLine($"| {k} | {v!.GetValue<double>():G6} |");
            });
            if (parse.GetValue(ReportCommand.ReportOption) is not null)
            {
                var (label, width) = (request.Random is null ? "SAE" : "random", (await new SaeService.SaeServiceClient(c.Channel).DescribeAsync(new DescribeRequest { Sae = saeRef }, cancellationToken: ct)).DSae);
                (values["label"], values["model"], values["width"]) = (label, modelArg, width);
                ReportCommand.WriteIfAsked(parse, "SAE evaluation", SaeTables.Header + "\n" + SaeTables.Row(label, modelArg, width, r) + "\n", values);
            }
            return 0;
        }));
        return command;
    }
}
