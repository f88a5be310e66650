using System.CommandLine;
using Stitching.Contracts.Eval.V1;
using Stitching.Eval.Experiments;
using Stitching.Zoo.Family;

namespace Stitching.Cli.Commands;

/// <summary>
/// stitch paper: the main job. On the embedded Brown family (built on first run) it runs the builtin Brown
/// experiment spec as the server's "eval.experiment" operation (<see cref="ReproduceCommand"/>) and writes the
/// report (docs/report.md) under {store}/reports. Defaults are the measured configuration of docs/science.md.
/// </summary>
public static class PaperCommand
{
    public static Command Create()
    {
        var family = new Option<string>("--family") { Description = "Zoo family: full (default) or ci (tiny, quick).", DefaultValueFactory = _ => "full" };
        family.AcceptOnlyFromAmong("full", "ci");
        var small = new Option<string?>("--small") { Description = "Model A (default: the family's smallest)." };
        var large = new Option<string?>("--large") { Description = "Model B (default: the family's largest)." };
        var tokens = new Option<long>("--tokens") { Description = $"Training tokens extracted per model (default {ExperimentSpecs.DefaultTrainTokens}; ci 65536)." };
        var widths = new Option<int[]>("--sae-widths") { Description = "SAE widths as multiples of d_B (default 4 8).", DefaultValueFactory = _ => [4, 8], AllowMultipleArgumentsPerToken = true };
        var k = new Option<int>("--k") { Description = "TopK active latents (default 16).", DefaultValueFactory = _ => 16 };
        var epochs = new Option<int>("--sae-epochs") { Description = "Passes of SAE training over the extracted tokens (default 4).", DefaultValueFactory = _ => 4 };
        var layerA = new Option<int?>("--layer-a") { Description = "Stitch layer of A (default: the middle, at least 1)." };
        var layerB = new Option<int?>("--layer-b") { Description = "Stitch layer of B (default: chosen by --rule)." };
        var rule = new Option<string>("--rule") { Description = "Layer rule: heldout_fvu (default), heldout_svcca or svcca (in-sample).", DefaultValueFactory = _ => "heldout_fvu" };
        rule.AcceptOnlyFromAmong("heldout_svcca", "heldout_fvu", "svcca");
        var adamSteps = new Option<long>("--adam-steps") { Description = $"Steps of the paper's Adam stitch, from zero weights (default {ExperimentSpecs.DefaultAdamSteps}; 0 skips it).", DefaultValueFactory = _ => ExperimentSpecs.DefaultAdamSteps };
        var output = new Option<string?>("--out") { Description = "Report file (default {store}/reports/paper-FAMILY.md; the JSON goes beside it)." };
        var command = new Command("paper", "The main job: the paper's pipeline on the embedded Brown family, end to end, with a report.")
        {
            family, small, large, tokens, widths, k, epochs, layerA, layerB, rule, adamSteps, output,
        };
        command.SetAction(async (parse, ct) =>
        {
            var family0 = FamilySpec.Named(parse.GetValue(family)!);
            var paths = ZooCommand.Paths(parse);
            if (parse.GetValue(ServerConnection.ServerOption) is null)
                await Task.Run(() => ZooCommand.BuildFamily(family0, paths, ct), ct);
            var spec = ReproduceCommand.Brown(family0);
            if (parse.GetValue(small) is { } sm) spec.ModelA.Model = sm;
            if (parse.GetValue(large) is { } lg) spec.ModelB.Model = lg;
            if (parse.GetValue(tokens) is > 0 and var t) spec.TrainTokens = t;
            spec.Sae = new SaeSettings { WidthMultiples = { parse.GetValue(widths)! }, K = parse.GetValue(k), Epochs = parse.GetValue(epochs) };
            spec.Layers = new LayerSelection { Rule = parse.GetValue(rule)! };
            if (parse.GetValue(layerA) is { } la) spec.Layers.LayerA = la;
            if (parse.GetValue(layerB) is { } lb) spec.Layers.LayerB = lb;
            spec.Stitch = new StitchSettings { AdamSteps = parse.GetValue(adamSteps) is 0 ? -1 : parse.GetValue(adamSteps) };
            return await ServerConnection.RunAsync(parse, ct, c => ReproduceCommand.RunAndWriteAsync(c, spec,
                parse.GetValue(output) ?? Path.Combine(Path.GetDirectoryName(paths.ModelsRoot)!, "reports", $"paper-{family0.Name}.md"), CliOutput.Json(parse), ct));
        });
        return command;
    }
}

