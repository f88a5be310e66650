using System.CommandLine;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Sae.V1;
using Stitching.Sae.Transfer;
using D = Stitching.Sae.Training.TrainSettings.Defaults;

namespace Stitching.Cli.Commands;

/// <summary>
/// stitch sae train | transfer | export | import | describe | compare | warmstart: SAE training, transfer
/// through a stitch, interop, and the paper's scratch-vs-warm-start FLOPs comparison (section 5).
/// </summary>
public static class SaeCommand
{
    public static Command Create() => new("sae", "Train, transfer, import, export and compare sparse autoencoders.")
    {
        Train(), Transfer(), Export(), Import(), Describe(), Compare(), SaeWarmStartCommand.Create(),
    };

    private static readonly Option<string> SaeId = new("--sae") { Description = "SAE artifact id (kind sae).", Required = true };

    internal static ArtifactRef Ref(string kind, string id) => new() { Kind = kind, Id = id };
    internal static SaeService.SaeServiceClient Client(ServerConnection c) => new(c.Channel);

    /// <summary>
    /// Options of a training run, shared by train and warmstart. An option left unset is sent as unset, so
    /// the server's default applies; the help text quotes it from <see cref="TrainSettings.Defaults"/>.
    /// </summary>
    internal sealed class TrainOptions
    {
        public readonly Option<string?> Architecture = new("--architecture") { Description = $"topk, batchtopk, jumprelu or standard (default {D.Architecture})." };
        public readonly Option<int> Width = new("--width") { Description = "Number of latents (d_sae); required unless warm-starting from --init." };
        public readonly Option<int> K = new("--k") { Description = $"Active latents per token, topk and batchtopk (default {D.K})." };
        public readonly Option<long> Tokens = new("--tokens") { Description = "Training tokens (default: one pass over the set)." };
        public readonly Option<int> Batch = new("--batch") { Description = $"Tokens per step (default {D.BatchSize})." };
        public readonly Option<double> Lr = new("--lr") { Description = $"Adam learning rate (default {D.Lr})." };
        public readonly Option<ulong> Seed = new("--seed") { Description = "Data order and initialisation seed (default 0)." };
        public readonly Option<long> LogEvery = new("--log-every") { Description = $"Steps between training-log rows (default {D.LogEvery})." };

        public IEnumerable<Option> All => [Architecture, Width, K, Tokens, Batch, Lr, Seed, LogEvery];

        public TrainRequest Request(ParseResult p, string set, string? hook) => new()
        {
            ActivationSet = Ref("activation-set", set), Hook = hook ?? "",
            Sae = new SaeSpec { Architecture = p.GetValue(Architecture) ?? "", DSae = p.GetValue(Width), K = p.GetValue(K) },
            Tokens = p.GetValue(Tokens), BatchSize = p.GetValue(Batch), Lr = p.GetValue(Lr), Seed = p.GetValue(Seed), LogEvery = p.GetValue(LogEvery),
        };
    }

    /// <summary>Starts a training operation and follows it; returns the trained SAE (null when it failed).</summary>
    internal static async Task<SaeInfo?> TrainAsync(ServerConnection c, TrainRequest request, CancellationToken ct)
    {
        var op = await Client(c).TrainAsync(request, cancellationToken: ct);
        var done = await ProgressBar.FollowAsync(c, op, ct);
        if (done.State != OperationState.Succeeded) { CliOutput.Failed(done); return null; }
        return done.Result.Unpack<TrainResult>().Sae;
    }

    private static Command Train()
    {
        var set = new Option<string>("--activation-set") { Description = "ActivationSet id to train on.", Required = true };
        var hook = new Option<string?>("--hook") { Description = "Hook of the set (needed when it holds several)." };
        var init = new Option<string?>("--init") { Description = "Warm start from this SAE id (e.g. a transferred one)." };
        var o = new TrainOptions();
        var command = new Command("train", "Train an SAE on one hook of an ActivationSet (an operation, followed with a progress bar).") { set, hook, init };
        foreach (var opt in o.All) command.Options.Add(opt);
        command.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var request = o.Request(parse, parse.GetValue(set)!, parse.GetValue(hook));
            if (parse.GetValue(init) is { Length: > 0 } i) request.Init = Ref("sae", i);
            var sae = await TrainAsync(c, request, ct);
            if (sae is null) return 1;
            CliOutput.Print(parse, sae, () => Print(sae));
            return 0;
        }));
        return command;
    }

    private static Command Transfer()
    {
        var stitch = new Option<string>("--stitch") { Description = "Stitch artifact id, or with --out a stitch.safetensors file.", Required = true };
        var sae = new Option<string>("--sae") { Description = "SAE artifact id, or with --out an SAELens folder.", Required = true };
        var output = new Option<string?>("--out") { Description = "Work on local files: write the transferred SAE to this SAELens folder (no server)." };
        var renorm = new Option<bool>("--renormalize") { Description = "Unit-norm decoder rows (encoder scaled to match) before a warm start." };
        var model = new Option<string?>("--model") { Description = "Model B's name for cfg.json metadata." };
        var hook = new Option<string?>("--hook") { Description = "Model B's hook for cfg.json metadata." };
        var command = new Command("transfer", "Move an SAE from model A to model B through a stitch: T_up . SAE . T_down.") { sae, stitch, output, renorm, model, hook };
        command.SetAction((parse, ct) =>
        {
            if (parse.GetValue(output) is { Length: > 0 } outDir)
            {
                var cfg = FolderTransfer.Run(parse.GetValue(sae)!, parse.GetValue(stitch)!, outDir, parse.GetValue(renorm), parse.GetValue(model) ?? "", parse.GetValue(hook) ?? "");
                CliOutput.Print(parse, new { path = Path.GetFullPath(outDir), architecture = cfg.Architecture, d_in = cfg.DIn, d_sae = cfg.DSae, k = cfg.K },
                    () => Console.WriteLine($"wrote {Path.GetFullPath(outDir)}: {cfg.Architecture}, d_in {cfg.DIn}, d_sae {cfg.DSae}{(cfg.K > 0 ? $", k {cfg.K}" : "")}"));
                return Task.FromResult(0);
            }
            return ServerConnection.RunAsync(parse, ct, async c =>
            {
                var transferred = await Client(c).TransferAsync(new TransferRequest
                {
                    Sae = Ref("sae", parse.GetValue(sae)!), Stitch = Ref("stitch", parse.GetValue(stitch)!), RenormalizeDecoder = parse.GetValue(renorm),
                    Model = parse.GetValue(model) ?? "", Hook = parse.GetValue(hook) ?? "",
                }, cancellationToken: ct);
                CliOutput.Print(parse, transferred, () => Print(transferred));
                return 0;
            });
        });
        return command;
    }

    private static Command Export()
    {
        var path = new Option<string>("--out") { Description = "Folder to write (SAELens format).", Required = true };
        var command = new Command("export", "Write an SAE as an SAELens folder (cfg.json + sae_weights.safetensors).") { SaeId, path };
        command.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var r = await Client(c).ExportAsync(new ExportRequest { Sae = Ref("sae", parse.GetValue(SaeId)!), Path = Path.GetFullPath(parse.GetValue(path)!) }, cancellationToken: ct);
            CliOutput.Print(parse, r, () => Console.WriteLine($"wrote {r.Path}: {string.Join(", ", r.Files)}"));
            return 0;
        }));
        return command;
    }

    private static Command Import()
    {
        var path = new Argument<string>("folder") { Description = "SAELens folder or EleutherAI sparsify hookpoint folder." };
        var format = new Option<string>("--format") { Description = "saelens, sparsify, or auto.", DefaultValueFactory = _ => "" };
        var model = new Option<string?>("--model") { Description = "Model name (sparsify files do not say)." };
        var hook = new Option<string?>("--hook") { Description = "Hook name (sparsify files do not say)." };
        var command = new Command("import", "Import an SAELens or sparsify SAE into the store.") { path, format, model, hook };
        command.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var imported = await Client(c).ImportAsync(new ImportRequest
            {
                Path = Path.GetFullPath(parse.GetValue(path)!), Format = parse.GetValue(format)!, Model = parse.GetValue(model) ?? "", Hook = parse.GetValue(hook) ?? "",
            }, cancellationToken: ct);
            CliOutput.Print(parse, imported, () => Print(imported));
            return 0;
        }));
        return command;
    }

    private static Command Describe()
    {
        var command = new Command("describe", "Configuration, shapes and stored metrics of an SAE.") { SaeId };
        command.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var described = await Client(c).DescribeAsync(new DescribeRequest { Sae = Ref("sae", parse.GetValue(SaeId)!) }, cancellationToken: ct);
            CliOutput.Print(parse, described, () => Print(described));
            return 0;
        }));
        return command;
    }

    private static Command Compare()
    {
        var scratch = new Option<string>("--scratch") { Description = "SAE trained from scratch.", Required = true };
        var warm = new Option<string>("--warm") { Description = "SAE warm-started from a transferred SAE.", Required = true };
        var thresholds = new Option<double[]>("--thresholds") { Description = "Explained-variance thresholds.", AllowMultipleArgumentsPerToken = true };
        var window = new Option<int>("--window") { Description = "Moving-average window (training-log rows).", DefaultValueFactory = _ => 5 };
        var command = new Command("compare", "FLOPs to explained-variance thresholds, scratch vs warm start (paper section 5).") { scratch, warm, thresholds, window };
        command.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var request = new CompareRequest { Scratch = Ref("sae", parse.GetValue(scratch)!), Warm = Ref("sae", parse.GetValue(warm)!), Window = parse.GetValue(window) };
            request.Thresholds.AddRange(parse.GetValue(thresholds) ?? []);
            var compared = await Client(c).CompareAsync(request, cancellationToken: ct);
            CliOutput.Print(parse, compared, () => PrintComparison(compared));
            return 0;
        }));
        return command;
    }

    internal static void Print(SaeInfo s)
    {
        Console.WriteLine($"sae/{s.Ref.Id}: {s.Architecture}, d_in {s.DIn}, d_sae {s.DSae}{(s.K > 0 ? $", k {s.K}" : "")}, apply_b_dec_to_input {s.ApplyBDecToInput.ToString().ToLowerInvariant()}");
        if (!string.IsNullOrEmpty(s.Model) || !string.IsNullOrEmpty(s.Hook)) Console.WriteLine($"  model {s.Model}, hook {s.Hook}");
        if (s.Metrics.Count > 0) Console.WriteLine("  " + string.Join(", ", s.Metrics.OrderBy(m => m.Key).Select(m => $"{m.Key} {m.Value:G4}")));
    }

    internal static void PrintComparison(CompareResponse r)
    {
        Console.WriteLine($"{"threshold",9} {"scratch FLOPs",14} {"warm FLOPs",14} {"saving",8}");
        foreach (var row in r.Rows)
            Console.WriteLine($"{row.Threshold,9:F3} {Flops(row.ScratchFlops),14} {Flops(row.WarmFlops),14} {(double.IsNaN(row.RelativeSaving) ? "n/a" : $"{row.RelativeSaving * 100:F1}%"),8}");
        Console.WriteLine($"stitch FLOPs in the warm ledger: {r.StitchFlops:E3}");
        Console.WriteLine($"FVU ~ A C^-beta: scratch A {r.ScratchFit.A:G4} beta {r.ScratchFit.Beta:F4}; warm A {r.WarmFit.A:G4} beta {r.WarmFit.Beta:F4}");
        Console.WriteLine($"cos(initial, final decoder rows): scratch {r.ScratchDecoderCosine:F3}, warm {r.WarmDecoderCosine:F3}");
        Console.WriteLine($"final explained variance (moving average): scratch {r.ScratchFinalExplainedVariance:F4}, warm {r.WarmFinalExplainedVariance:F4}");
    }

    private static string Flops(double f) => f > 0 ? f.ToString("E3") : "not reached";
}
