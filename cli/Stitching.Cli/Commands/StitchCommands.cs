using Stitching.Client;
using System.CommandLine;
using Grpc.Core;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Stitch.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using Stitching.Stitch.Fitting;
using Stitching.Stitch.Matching;
using Stitching.Stitch.Splice;

using Stitching.Eval.Reports;

namespace Stitching.Cli.Commands;

/// <summary>stitch match | fit | apply | eval-stitch: the stitch service from the command line (paper sections 2-3).</summary>
public static class StitchCommands
{
    public static IEnumerable<Command> Create() => [Match(), Fit(), Apply(), EvalStitch()];

    private static Command Match()
    {
        var a = new Option<string>("--a") { Description = "Activation set id of model A (all its hooks are compared).", Required = true };
        var b = new Option<string>("--b") { Description = "Activation set id of model B.", Required = true };
        var tokens = new Option<int>("--tokens") { Description = $"Non-special tokens sampled (default {MatchSettings.DefaultTokens})." };
        var variance = new Option<double>("--variance") { Description = $"SVCCA variance kept (default {MatchSettings.DefaultVariance})." };
        var command = new Command("match", "SVCCA and CKA between every layer of A and every layer of B; best l_B per l_A.") { a, b, tokens, variance };
        command.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var r = await new StitchService.StitchServiceClient(c.Channel).MatchLayersAsync(new MatchLayersRequest
            {
                ActivationSetA = Set(parse.GetValue(a)!), ActivationSetB = Set(parse.GetValue(b)!),
                MaxTokens = parse.GetValue(tokens), SvccaVariance = parse.GetValue(variance),
            }, cancellationToken: ct);
            CliOutput.Print(parse, r, () =>
            {
                Console.WriteLine($"SVCCA (rows: A hooks, columns: B hooks; {r.Tokens} tokens, variance kept {r.SvccaVariance})");
                Console.WriteLine(StitchTables.Matrix(r.HooksA, r.HooksB, r.Svcca, r.BestB));
                Console.WriteLine("linear CKA");
                Console.WriteLine(StitchTables.Matrix(r.HooksA, r.HooksB, r.Cka, null));
            });
            return 0;
        }));
        return command;
    }

    private static Command Fit()
    {
        var a = new Option<string>("--a") { Description = "Model A's rows: an activation set id, or a local .safetensors file with a tensor 'activations' [n, d_A].", Required = true };
        var b = new Option<string>("--b") { Description = "Model B's rows, aligned with A's.", Required = true };
        var hookA = new Option<string?>("--hook-a") { Description = "Hook of set A (default: its only hook)." };
        var hookB = new Option<string?>("--hook-b") { Description = "Hook of set B." };
        var method = new Option<string?>("--method") { Description = $"lstsq (exact) or adam (the paper's recipe); default {FitSettings.Defaults.Method}." };
        var ridge = new Option<double>("--ridge") { Description = "Ridge penalty lambda (lstsq)." };
        var epochs = new Option<int>("--epochs") { Description = $"Adam epochs (default {FitSettings.Defaults.AdamEpochs})." };
        var lr = new Option<double>("--lr") { Description = $"Adam learning rate (default {FitSettings.Defaults.AdamLearningRate})." };
        var alpha = new Option<double?>("--alpha") { Description = $"Adam round-trip weight (default {FitSettings.Defaults.AdamAlpha})." };
        var init = new Option<bool>("--init-lstsq") { Description = "Start Adam from the lstsq solution." };
        var output = new Option<string?>("--out") { Description = "Also write the stitch (P_up, b_up, P_down, b_down) to this local .safetensors file." };
        var command = new Command("fit", "Fit an affine stitch between two aligned sets of activations.") { a, b, hookA, hookB, method, ridge, epochs, lr, alpha, init, output };
        command.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var artifacts = new ArtifactsService.ArtifactsServiceClient(c.Channel);
            var request = new FitRequest
            {
                A = await SourceAsync(artifacts, parse.GetValue(a)!, parse.GetValue(hookA), ct),
                B = await SourceAsync(artifacts, parse.GetValue(b)!, parse.GetValue(hookB), ct),
                Method = parse.GetValue(method) ?? "", Ridge = parse.GetValue(ridge),
                Adam = new AdamSettings { Epochs = parse.GetValue(epochs), LearningRate = parse.GetValue(lr), InitLstsq = parse.GetValue(init) },
            };
            if (parse.GetValue(alpha) is { } al) { request.Adam.Alpha = al; request.Adam.AlphaSet = true; }
            var op = await ProgressBar.FollowAsync(c, await new StitchService.StitchServiceClient(c.Channel).FitAsync(request, cancellationToken: ct), ct);
            if (op.State != OperationState.Succeeded) return CliOutput.Failed(op);
            var result = op.Result.Unpack<FitResult>();
            CliOutput.Print(parse, result, () => Console.WriteLine(StitchTables.Fit(result)));
            if (parse.GetValue(output) is { } path)
            {
                var tensors = await TensorTransfer.ReadAsync(artifacts, result.Stitch, file: "stitch.safetensors", ct: ct);
                SafetensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["stitch"] = result.Stitch.Id, ["method"] = result.Method });
                CliOutput.Notes(parse).WriteLine($"wrote {path}");
            }
            return 0;
        }));
        return command;
    }

    private static Command Apply()
    {
        var stitch = new Option<string>("--stitch") { Description = "Stitch id.", Required = true };
        var direction = new Option<Direction>("--direction") { Description = "Up, Down, UpDown or DownUp.", DefaultValueFactory = _ => Direction.Up };
        var input = new Option<string>("--in") { Description = "Local .safetensors with a float tensor 'activations' [..., d].", Required = true };
        var output = new Option<string>("--out") { Description = "Where to write the mapped 'activations'.", Required = true };
        var command = new Command("apply", "Apply a stitch to activations in a local safetensors file.") { stitch, direction, input, output };
        command.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            using var reader = SafetensorsReader.Open(parse.GetValue(input)!);
            var r = await new StitchService.StitchServiceClient(c.Channel).ApplyAsync(new ApplyRequest
            {
                Stitch = new ArtifactRef { Kind = ArtifactKinds.Stitch, Id = parse.GetValue(stitch)! }, Direction = parse.GetValue(direction),
                Activations = TensorCodec.ToProto(reader.Read("activations")),
            }, cancellationToken: ct);
            SafetensorsWriter.Write(parse.GetValue(output)!, [TensorCodec.FromProto(r.Activations)]);
            CliOutput.Print(parse, new { path = Path.GetFullPath(parse.GetValue(output)!), shape = r.Activations.Shape },
                () => Console.WriteLine($"wrote {parse.GetValue(output)} [{string.Join(", ", r.Activations.Shape)}]"));
            return 0;
        }));
        return command;
    }

    private static Command EvalStitch()
    {
        var stitch = new Option<string>("--stitch") { Description = "Stitch id.", Required = true };
        var modelA = new Option<string>("--model-a") { Description = "Model A.", Required = true };
        var modelB = new Option<string>("--model-b") { Description = "Model B.", Required = true };
        var layerA = new Option<int>("--layer-a") { Description = "l_A: splice before this block of A.", Required = true };
        var layerB = new Option<int>("--layer-b") { Description = "l_B: splice before this block of B.", Required = true };
        var texts = new Option<string[]>("--text-file") { Description = "Held-out text files (one document each).", Required = true, AllowMultipleArgumentsPerToken = true };
        var context = new Option<int>("--context") { Description = $"Tokens per row (default {SpliceSettings.DefaultContext})." };
        var rows = new Option<int>("--rows") { Description = $"Rows evaluated (default {SpliceSettings.DefaultMaxRows})." };
        var command = new Command("eval-stitch", "The paper's Table 1: next-token CE of A, B and the spliced runs, with ablation floors.") { stitch, modelA, modelB, layerA, layerB, texts, context, rows };
        command.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var r = await new StitchService.StitchServiceClient(c.Channel).EvaluateSpliceAsync(new EvaluateSpliceRequest
            {
                Stitch = new ArtifactRef { Kind = ArtifactKinds.Stitch, Id = parse.GetValue(stitch)! },
                ModelA = new ModelSpec { Model = parse.GetValue(modelA)! }, ModelB = new ModelSpec { Model = parse.GetValue(modelB)! },
                LayerA = parse.GetValue(layerA), LayerB = parse.GetValue(layerB), ContextLength = parse.GetValue(context), MaxRows = parse.GetValue(rows),
                Texts = { parse.GetValue(texts)!.Select(File.ReadAllText) },
            }, cancellationToken: ct);
            CliOutput.Print(parse, r, () => Console.WriteLine(StitchTables.Splice(r)));
            return 0;
        }));
        return command;
    }

    private static ArtifactRef Set(string id) => new() { Kind = ArtifactKinds.ActivationSet, Id = id };

    /// <summary>An activation set id as is; a local file is uploaded as a "tensors" artifact named by its content hash (reused when present).</summary>
    private static async Task<ActivationSource> SourceAsync(ArtifactsService.ArtifactsServiceClient artifacts, string value, string? hook, CancellationToken ct)
    {
        if (!File.Exists(value)) return new ActivationSource { Artifact = Set(value), Tensor = hook ?? "" };
        using var reader = SafetensorsReader.Open(value);
        await using var stream = File.OpenRead(value);
        var id = "upload-" + Convert.ToHexStringLower(await System.Security.Cryptography.SHA256.HashDataAsync(stream, ct))[..20]; // streamed: files may be large
        var r = new ArtifactRef { Kind = ArtifactKinds.Tensors, Id = id };
        try { await artifacts.GetArtifactAsync(new GetArtifactRequest { Ref = r }, cancellationToken: ct); }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            await TensorTransfer.UploadAsync(artifacts, r, [reader.Read("activations")], metadata: new Dictionary<string, string> { ["source"] = Path.GetFileName(value) }, ct: ct);
        }
        return new ActivationSource { Artifact = r, Tensor = "activations" };
    }
}
