using System.CommandLine;
using Stitching.Reports;
using Stitching.Zoo.Family;

namespace Stitching.Cli.Commands;

/// <summary>
/// stitch paper: the main job. On the embedded Brown family (built on first run) it reproduces the
/// paper's pipeline end to end over gRPC (<see cref="PaperRun"/>) and writes the report as Markdown and
/// JSON (docs/report.md) under {store}/reports. Defaults are the measured configuration of docs/science.md.
/// </summary>
public static class PaperCommand
{
    public static Command Create()
    {
        var family = new Option<string>("--family") { Description = "Zoo family: full (default) or ci (tiny, quick).", DefaultValueFactory = _ => "full" };
        family.AcceptOnlyFromAmong("full", "ci");
        var small = new Option<string?>("--small") { Description = "Model A (default: the family's smallest)." };
        var large = new Option<string?>("--large") { Description = "Model B (default: the family's largest)." };
        var tokens = new Option<long>("--tokens") { Description = $"Training tokens extracted per model (default {PaperSettings.DefaultTokens}; ci {PaperSettings.CiTokens})." };
        var widths = new Option<int[]>("--sae-widths") { Description = "SAE widths as multiples of d_B (default 4 8).", DefaultValueFactory = _ => [4, 8], AllowMultipleArgumentsPerToken = true };
        var k = new Option<int>("--k") { Description = "TopK active latents (default 16).", DefaultValueFactory = _ => 16 };
        var epochs = new Option<int>("--sae-epochs") { Description = "Passes of SAE training over the extracted tokens (default 4).", DefaultValueFactory = _ => 4 };
        var layerA = new Option<int?>("--layer-a") { Description = "Stitch layer of A (default: the middle, at least 1)." };
        var layerB = new Option<int?>("--layer-b") { Description = "Stitch layer of B (default: chosen by --rule)." };
        var rule = new Option<string>("--rule") { Description = "Layer rule: heldout_fvu (default), heldout_svcca or svcca (in-sample).", DefaultValueFactory = _ => "heldout_fvu" };
        rule.AcceptOnlyFromAmong("heldout_svcca", "heldout_fvu", "svcca");
        var adamSteps = new Option<long>("--adam-steps") { Description = $"Steps of the paper's Adam stitch, from zero weights (default {PaperSettings.DefaultAdamSteps}; 0 skips it).", DefaultValueFactory = _ => PaperSettings.DefaultAdamSteps };
        var output = new Option<string?>("--out") { Description = "Report file (default {store}/reports/paper-FAMILY.md; the JSON goes beside it)." };
        var command = new Command("paper", "The main job: the paper's pipeline on the embedded Brown family, end to end, with a report.")
        {
            family, small, large, tokens, widths, k, epochs, layerA, layerB, rule, adamSteps, output,
        };
        command.SetAction(async (parse, ct) =>
        {
            var spec = FamilySpec.Named(parse.GetValue(family)!);
            var paths = ZooCommand.Paths(parse);
            if (parse.GetValue(ServerConnection.ServerOption) is null)
                await Task.Run(() => ZooCommand.BuildFamily(spec, paths, ct), ct);
            var settings = new PaperSettings(
                parse.GetValue(small) ?? spec.ModelName(spec.Sizes[0]), parse.GetValue(large) ?? spec.ModelName(spec.Sizes[^1]),
                parse.GetValue(tokens) is > 0 and var t ? t : spec.Name == "ci" ? PaperSettings.CiTokens : PaperSettings.DefaultTokens, spec.Context,
                parse.GetValue(widths)!, parse.GetValue(k), parse.GetValue(epochs), parse.GetValue(layerA), parse.GetValue(layerB),
                parse.GetValue(rule)!, parse.GetValue(adamSteps));
            return await ServerConnection.RunAsync(parse, ct, async c =>
            {
                var (markdown, json) = await new PaperRun(c, settings, ct).ExecuteAsync();
                var path = Path.GetFullPath(parse.GetValue(output) ?? Path.Combine(Path.GetDirectoryName(paths.ModelsRoot)!, "reports", $"paper-{spec.Name}.md"));
                ReportCommand.Print(ReportWriter.Write(path, $"Stitching report: {settings.Small} -> {settings.Large}", markdown, json));
                return 0;
            });
        });
        return command;
    }
}

/// <summary>The main job's settings; defaults chosen by the measurements in docs/science.md.</summary>
public sealed record PaperSettings(string Small, string Large, long Tokens, int Context, int[] Widths, int K, int SaeEpochs,
    int? LayerA, int? LayerB, string Rule, long AdamSteps)
{
    public const long DefaultTokens = 262144, CiTokens = 65536, DefaultAdamSteps = 2000;
    /// <summary>Held-out rows of context tokens extracted from brown:test (SAE held-out batch, splice table).</summary>
    public const int TestRows = 128, SpliceRows = 64;
    public const double SaeLr = 1e-3;
    public const int SaeBatch = 1024;
}
