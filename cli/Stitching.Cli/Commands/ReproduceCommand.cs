using System.CommandLine;
using Stitching.Contracts.Eval.V1;
using Stitching.Eval.Experiments;
using Stitching.Zoo.Family;

namespace Stitching.Cli.Commands;

/// <summary>
/// stitch reproduce SPEC.yaml | --builtin brown: runs an experiment spec (docs/experiments.md) as the server's
/// "eval.experiment" operation, follows its stages, and writes its report; --plan is the dry run.
/// </summary>
public static class ReproduceCommand
{
    public static Command Create()
    {
        var spec = new Argument<string?>("SPEC") { Description = "Experiment spec, YAML or JSON (docs/experiments.md; examples/ has the paper's pairs).", Arity = ArgumentArity.ZeroOrOne };
        var builtin = new Option<string?>("--builtin") { Description = "A built-in spec instead of a file: brown (the main job's)." };
        builtin.AcceptOnlyFromAmong("brown");
        var family = new Option<string>("--family") { Description = "Zoo family of --builtin brown: full (default) or ci.", DefaultValueFactory = _ => "full" };
        family.AcceptOnlyFromAmong("full", "ci");
        var plan = new Option<bool>("--plan") { Description = "Dry run: validate, resolve models and layers, estimate FLOPs, disk and memory; run nothing." };
        var output = new Option<string?>("--out") { Description = "Report path PATH.md (default {store}/reports/NAME.md)." };
        var command = new Command("reproduce", "Run an experiment spec end to end on the server, with a report.") { spec, builtin, family, plan, output };
        command.SetAction(async (parse, ct) =>
        {
            ExperimentSpec s;
            var paths = ZooCommand.Paths(parse);
            if (parse.GetValue(builtin) is not null)
            {
                var f = FamilySpec.Named(parse.GetValue(family)!);
                if (parse.GetValue(ServerConnection.ServerOption) is null && !parse.GetValue(plan)) await Task.Run(() => ZooCommand.BuildFamily(f, paths, ct), ct);
                s = Brown(f);
            }
            else if (parse.GetValue(spec) is { } file)
            {
                if (!File.Exists(file)) { Console.Error.WriteLine($"error: SPEC: {Path.GetFullPath(file)} does not exist."); return 2; }
                try { s = ExperimentSpecs.Parse(File.ReadAllText(file), "SPEC"); }
                catch (Stitching.Core.Errors.StitchingException e) { Console.Error.WriteLine($"error: {e.Message}"); return 2; }
                if (s.Name.Length == 0) s.Name = Path.GetFileNameWithoutExtension(file);
            }
            else { Console.Error.WriteLine("error: give SPEC (a YAML or JSON file) or --builtin brown."); return 2; }
            return await ServerConnection.RunAsync(parse, ct, async c =>
            {
                if (parse.GetValue(plan))
                {
                    var p = await new ExperimentsService.ExperimentsServiceClient(c.Channel).PlanExperimentAsync(new RunExperimentRequest { Spec = s }, cancellationToken: ct);
                    CliOutput.Print(parse, p, () => Console.WriteLine(PlanText(p)));
                    return p.Problems.Count == 0 ? 0 : 3;
                }
                return await RunAndWriteAsync(c, s, parse.GetValue(output) ?? Path.Combine(Path.GetDirectoryName(paths.ModelsRoot)!, "reports", $"{s.Name}.md"), CliOutput.Json(parse), ct);
            });
        });
        return command;
    }

    /// <summary>The main job's spec on a zoo family: its smallest and largest models, its context, the measured defaults.</summary>
    public static ExperimentSpec Brown(FamilySpec f) =>
        ExperimentSpecs.Brown(f.Name, f.ModelName(f.Sizes[0]), f.ModelName(f.Sizes[^1]), f.Context, f.Name == "ci" ? 65536 : ExperimentSpecs.DefaultTrainTokens);

    /// <summary>Runs the experiment, writes its report under <paramref name="markdownPath"/> and prints the report (or the result as JSON).</summary>
    public static async Task<int> RunAndWriteAsync(ServerConnection c, ExperimentSpec s, string markdownPath, bool json, CancellationToken ct)
    {
        var result = await ExperimentClient.RunAsync(c, s, ct);
        var (files, markdown) = await ExperimentClient.DownloadReportAsync(c, result.Report, Path.GetFullPath(markdownPath), ct);
        Console.WriteLine(json ? CliOutput.Format(result) : markdown);
        ReportCommand.Print(files, json ? Console.Error : Console.Out);
        Console.Error.WriteLine($"experiment: {result.Stages.Count} stages ({result.Stages.Count(x => x.Reused)} reused), {result.Ledger.TotalFlops:E2} FLOPs; report artifact {result.Report.Kind}/{result.Report.Id}");
        return 0;
    }

    public static string PlanText(ExperimentPlan p)
    {
        var sb = new System.Text.StringBuilder($"experiment {p.Spec.Name} (spec {p.SpecHash[..12]})\n\nmodels:\n");
        foreach (var m in p.Models)
            sb.AppendLine($"  {m.Model}: {m.Availability}{(m.Width > 0 ? $", {m.Layers} layers, d={m.Width}, {m.Parameters:N0} parameters" : "")}{(m.Availability == "missing" ? $"\n    {m.Message}" : "")}");
        sb.AppendLine($"\nlayers: A {(p.LayerA >= 0 ? p.LayerA : "?")} -> B {(p.LayerB >= 0 ? p.LayerB.ToString() : "chosen after extraction")} ({p.LayerNote})\n\nstages:");
        foreach (var st in p.Stages) sb.AppendLine($"  {st.Name,-22} {st.Service,-12} {(st.Flops > 0 ? st.Flops.ToString("E2") : "-"),10} FLOPs  {st.Tokens,12:N0} tokens");
        sb.AppendLine($"\ntotal {p.Flops:E2} FLOPs; activation caches {p.ActivationCacheBytes / 1e9:F2} GB on disk; peak memory about {p.PeakMemoryBytes / 1e9:F2} GB");
        if (p.Problems.Count > 0) sb.AppendLine("\nproblems (the run would stop):\n" + string.Join("\n", p.Problems.Select(x => "  - " + x)));
        return sb.ToString();
    }
}
