using System.CommandLine;
using System.Text.Json;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Eval.V1;
using Stitching.Contracts.Sae.V1;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;

namespace Stitching.Cli.Commands;

/// <summary>stitch eval sae: the eval service from the command line (docs/metrics.md "SAE evaluation").</summary>
public static class EvalCommand
{
    public static Command Create() => new("eval", "Evaluate SAEs (reconstruction, sparsity, spliced next-token loss) on held-out tokens.") { Sae() };

    private static Command Sae()
    {
        var model = new Option<string>("--model") { Description = "The model the SAE reads (store name, folder or org/name).", Required = true };
        var sae = new Option<string>("--sae") { Description = "SAE artifact id, or a local SAELens folder (imported first).", Required = true };
        var hook = new Option<string?>("--hook") { Description = "Hook the SAE reads (default: the SAE's own)." };
        var tokens = new Option<string>("--tokens") { Description = "A .safetensors file with an int32/int64 tensor token_ids [rows, T].", Required = true };
        var batch = new Option<int>("--batch") { Description = $"Rows per forward pass (default {Eval.EvalGrpcService.DefaultBatchSize})." };
        var rows = new Option<int>("--rows") { Description = "Rows of the file evaluated (default all)." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of a table." };
        var command = new Command("sae", "An SAE on held-out token rows: L0, MSE, FVU, explained variance, CE clean / spliced / ablated, loss recovered, KL.")
        {
            model, sae, hook, tokens, batch, rows, json,
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
            var r = await new EvalService.EvalServiceClient(c.Channel).EvaluateSaeAsync(new EvaluateSaeRequest
            {
                Model = new ModelSpec { Model = Directory.Exists(modelArg) ? Path.GetFullPath(modelArg) : modelArg },
                Sae = saeRef, Hook = parse.GetValue(hook) ?? "", TokenIds = TensorCodec.ToProto(ids), BatchSize = parse.GetValue(batch), MaxRows = parse.GetValue(rows),
            }, cancellationToken: ct);
            var values = new Dictionary<string, object>
            {
                ["l0"] = r.L0, ["mse"] = r.Mse, ["fvu"] = r.Fvu, ["explained_variance"] = r.ExplainedVariance, ["cosine"] = r.Cosine,
                ["ce_clean"] = r.CeClean, ["ce_spliced"] = r.CeSpliced, ["ce_delta"] = r.CeDelta, ["ce_zero_ablation"] = r.CeZeroAblation,
                ["ce_mean_ablation"] = r.CeMeanAblation, ["loss_recovered"] = r.LossRecovered, ["loss_recovered_mean"] = r.LossRecoveredMean,
                ["kl"] = r.Kl, ["dead_fraction"] = r.DeadFraction, ["tokens"] = r.Tokens, ["predicted_tokens"] = r.PredictedTokens,
                ["rows"] = r.Rows, ["hook"] = r.Hook, ["sae"] = saeRef.Id,
            };
            if (parse.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(values));
            else
            {
                Console.WriteLine($"SAE {saeRef.Id} at {r.Hook} on {r.Tokens} tokens ({r.Rows} rows; BOS excluded)");
                Console.WriteLine("| metric | value |\n|---|---|");
                foreach (var (k, v) in values.Where(p => p.Value is double)) Console.WriteLine($"| {k} | {(double)v:G6} |");
            }
            return 0;
        }));
        return command;
    }
}
