using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Grpc.Core;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Eval.V1;
using Stitching.Eval.Experiments;
using Stitching.Reports;

namespace Stitching.Cli.Commands;

/// <summary>
/// stitch sweep list | run | point | collect | render SPEC: sweeps of experiments (docs/experiments.md "Sweeps").
/// A point is finished when the report artifact of its spec's hash exists, so every command skips finished points,
/// and points that share stages (the extraction, the stitch) share their stage records.
/// </summary>
public static partial class SweepCommand
{
    private static readonly Argument<string> SpecArgument = new("SPEC") { Description = "Sweep file: experiment: (the base spec) and sweep: (axes or points), YAML or JSON." };

    public static Command Create()
    {
        var command = new Command("sweep", "Sweeps of experiments: expand, run locally with bounded parallelism, collect, or render a Kubernetes Indexed Job.");
        command.Subcommands.Add(List());
        command.Subcommands.Add(Run());
        command.Subcommands.Add(Point());
        command.Subcommands.Add(Collect());
        command.Subcommands.Add(Render());
        return command;
    }

    private static Sweep Load(ParseResult parse)
    {
        var file = parse.GetValue(SpecArgument)!;
        if (!File.Exists(file)) throw new ArgumentException($"SPEC: {Path.GetFullPath(file)} does not exist.");
        try { return Sweeps.Parse(File.ReadAllText(file), Path.GetFileNameWithoutExtension(file)); }
        catch (Stitching.Core.Errors.StitchingException e) { throw new ArgumentException(e.Message); }
    }

    private static string Hash(SweepPoint p) => ExperimentSpecs.Hash(ExperimentSpecs.Normalize(p.Spec));

    private static async Task<bool> FinishedAsync(ServerConnection c, SweepPoint p, CancellationToken ct)
    {
        try
        {
            await new ArtifactsService.ArtifactsServiceClient(c.Channel).GetArtifactAsync(new GetArtifactRequest { Ref = ExperimentSpecs.ReportRef(Hash(p)) }, cancellationToken: ct);
            return true;
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound) { return false; }
    }

    private static Command List()
    {
        var command = new Command("list", "The points of a sweep, their spec hashes and whether each has finished (with --server or the local store).") { SpecArgument };
        command.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var sweep = Load(parse);
            var points = new JsonArray();
            foreach (var p in sweep.Points)
                points.Add(new JsonObject { ["index"] = p.Index, ["name"] = p.Name, ["spec_hash"] = Hash(p), ["finished"] = await FinishedAsync(c, p, ct) });
            CliOutput.Print(parse, new JsonObject { ["sweep"] = sweep.Name, ["parallelism"] = sweep.Parallelism, ["points"] = points }, () =>
            {
                Console.WriteLine($"sweep {sweep.Name}: {sweep.Points.Count} points, parallelism {sweep.Parallelism}");
                foreach (var p in points)
                    Console.WriteLine($"  {p!["index"],4}  {p["spec_hash"]!.GetValue<string>()[..12]}  {(p["finished"]!.GetValue<bool>() ? "finished" : "to run  ")}  {p["name"]}");
            });
            return 0;
        }));
        return command;
    }

    private static Command Run()
    {
        var parallelism = new Option<int?>("--parallelism") { Description = "Points running at once (default: the sweep's parallelism)." };
        var command = new Command("run", "Run every unfinished point, at most --parallelism at once (one bar with ETA on stderr); finished points are skipped.") { SpecArgument, parallelism };
        command.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var sweep = Load(parse);
            var slots = new SemaphoreSlim(Math.Max(1, parse.GetValue(parallelism) ?? sweep.Parallelism));
            var progress = new SweepProgress(sweep.Points.Count);
            var outcomes = new JsonObject[sweep.Points.Count];
            var failed = 0;
            // A line per point as it starts and ends: stdout for a person, stderr under --json (where the result is one document at the end).
            void Say(SweepPoint p, string what) => progress.Note($"point {p.Index} {p.Name}: {what}", CliOutput.Notes(parse));
            var tasks = sweep.Points.Select(async p =>
            {
                await slots.WaitAsync(ct);
                var outcome = outcomes[p.Index] = new JsonObject { ["index"] = p.Index, ["name"] = p.Name, ["spec_hash"] = Hash(p) };
                try
                {
                    if (await FinishedAsync(c, p, ct))
                    {
                        (outcome["status"], outcome["report"]) = ("skipped", ExperimentSpecs.ReportRef(Hash(p)).Id);
                        progress.Skipped(p.Index);
                        Say(p, $"skipped (finished; report {outcome["report"]})");
                        return;
                    }
                    Say(p, "running");
                    var result = await ExperimentClient.RunAsync(c, p.Spec, ct, progress: false, update: op => progress.Update(p.Index, op));
                    (outcome["status"], outcome["report"], outcome["stages"], outcome["stages_reused"]) = ("done", result.Report.Id, result.Stages.Count, result.Stages.Count(s => s.Reused));
                    progress.Ended(p.Index);
                    Say(p, $"done ({result.Stages.Count(s => s.Reused)} of {result.Stages.Count} stages reused; report {result.Report.Id})");
                }
                catch (RpcException e)
                {
                    Interlocked.Increment(ref failed);
                    (outcome["status"], outcome["error"]) = ("failed", e.Status.Detail);
                    progress.Ended(p.Index);
                    Say(p, $"failed: {e.Status.Detail}");
                }
                finally { slots.Release(); }
            }).ToList();
            await Task.WhenAll(tasks);
            progress.Finish();
            var summary = new JsonObject
            {
                ["sweep"] = sweep.Name, ["points"] = new JsonArray(outcomes.Select(o => (JsonNode)o).ToArray()),
                ["finished"] = sweep.Points.Count - failed, ["failed"] = failed,
            };
            CliOutput.Print(parse, summary, () => Console.WriteLine($"sweep {sweep.Name}: {sweep.Points.Count - failed} of {sweep.Points.Count} points finished"));
            return failed == 0 ? 0 : 1;
        }));
        return command;
    }

    private static Command Point()
    {
        var index = new Option<int?>("--index") { Description = "The point to run (default: $JOB_COMPLETION_INDEX, set by a Kubernetes Indexed Job)." };
        var command = new Command("point", "Run one point of a sweep (what each pod of the Indexed Job runs; its stages and a bar with ETA on stderr); a finished point returns at once.") { SpecArgument, index };
        command.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var sweep = Load(parse);
            var i = parse.GetValue(index) ?? (int.TryParse(Environment.GetEnvironmentVariable("JOB_COMPLETION_INDEX"), out var e) ? e : -1);
            if (i < 0 || i >= sweep.Points.Count) throw new ArgumentException($"--index: {i} is not a point of {sweep.Name} (0 to {sweep.Points.Count - 1}); give --index or set JOB_COMPLETION_INDEX.");
            var p = sweep.Points[i];
            var outcome = new JsonObject { ["index"] = i, ["name"] = p.Name, ["spec_hash"] = Hash(p) };
            if (await FinishedAsync(c, p, ct))
            {
                (outcome["status"], outcome["report"]) = ("skipped", ExperimentSpecs.ReportRef(Hash(p)).Id);
                CliOutput.Print(parse, outcome, () => Console.WriteLine($"point {i} {p.Name}: finished already (report {outcome["report"]})"));
                return 0;
            }
            var result = await ExperimentClient.RunAsync(c, p.Spec, ct);
            (outcome["status"], outcome["report"], outcome["stages"], outcome["stages_reused"]) = ("done", result.Report.Id, result.Stages.Count, result.Stages.Count(s => s.Reused));
            CliOutput.Print(parse, outcome, () => Console.WriteLine($"point {i} {p.Name}: done ({result.Stages.Count(s => s.Reused)} of {result.Stages.Count} stages reused; report {result.Report.Id})"));
            return 0;
        }));
        return command;
    }

    private static Command Collect()
    {
        var output = new Option<string?>("--out") { Description = "Report path PATH.md (default {store}/reports/sweep-NAME.md)." };
        var command = new Command("collect", "Aggregate the finished points' reports into one sweep report (table across points, savings per point).") { SpecArgument, output };
        command.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var sweep = Load(parse);
            var (markdown, json, missing) = await CollectAsync(c, sweep, ct);
            var path = parse.GetValue(output) ?? Path.Combine(Path.GetDirectoryName(ZooCommand.Paths(parse).ModelsRoot)!, "reports", $"sweep-{Slug(sweep.Name)}.md");
            var files = ReportWriter.Write(path, $"Sweep {sweep.Name}", markdown, json);
            CliOutput.Print(parse, json, () => Console.WriteLine(markdown));
            ReportCommand.Print(files, CliOutput.Notes(parse));
            return missing == 0 ? 0 : 3;
        }));
        return command;
    }

    /// <summary>One row per point and SAE width: the pair, the layers, the SAE numbers and the savings at every threshold.</summary>
    public static async Task<(string Markdown, JsonObject Json, int Missing)> CollectAsync(ServerConnection c, Sweep sweep, CancellationToken ct)
    {
        var artifacts = new ArtifactsService.ArtifactsServiceClient(c.Channel);
        var rows = new JsonArray();
        var missing = new List<string>();
        var md = new StringBuilder($"# Sweep {sweep.Name}\n\n");
        var table = new StringBuilder();
        string[]? thresholds = null;
        foreach (var p in sweep.Points)
        {
            var report = ExperimentSpecs.ReportRef(Hash(p));
            JsonObject r;
            try
            {
                using var call = artifacts.ReadFile(new ReadFileRequest { Ref = report, File = "report.json" }, cancellationToken: ct);
                var bytes = new MemoryStream();
                await foreach (var chunk in call.ResponseStream.ReadAllAsync(ct)) chunk.Data.WriteTo(bytes);
                r = (JsonObject)JsonNode.Parse(bytes.ToArray())!;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.NotFound) { missing.Add(p.Name); continue; }
            foreach (var sae in r["sae"]?.AsArray() ?? [])
            {
                var savings = sae!["savings"]!.AsArray();
                thresholds ??= savings.Select(s => s!["relative_to_scratch_final"]!.GetValue<bool>() ? $"{s["threshold"]!.GetValue<double>() * 100:F0}% of final" : $"EV {s["threshold"]!.GetValue<double>():F2}").ToArray();
                var row = new JsonObject
                {
                    ["point"] = p.Name, ["index"] = p.Index, ["spec_hash"] = r["experiment"]?["spec_hash"]?.DeepClone(), ["report"] = report.Id,
                    ["a"] = r["pair"]!["a"]!.DeepClone(), ["b"] = r["pair"]!["b"]!.DeepClone(), ["layer_a"] = r["pair"]!["layer_a"]!.DeepClone(), ["layer_b"] = r["pair"]!["layer_b"]!.DeepClone(),
                    ["width"] = sae["width"]!.DeepClone(), ["k"] = sae["k"]!.DeepClone(), ["source_fvu"] = sae["source_fvu"]!.DeepClone(), ["zero_shot_fvu"] = sae["zero_shot_fvu"]!.DeepClone(),
                    ["scratch_final_ev"] = sae["scratch_final_ev"]!.DeepClone(), ["warm_final_ev"] = sae["warm_final_ev"]!.DeepClone(),
                    ["savings"] = savings.DeepClone(), ["total_flops"] = r["ledger"]?["total_flops"]?.DeepClone(),
                };
                rows.Add(row);
                string Num(JsonNode? n, string f = "F3") => n is null ? "n/a" : n.GetValue<double>().ToString(f, CultureInfo.InvariantCulture);
                table.AppendLine($"| {p.Name} | {row["a"]} -> {row["b"]} | {row["layer_a"]} -> {row["layer_b"]} | {row["width"]} | {row["k"]} | {Num(row["source_fvu"])} | {Num(row["zero_shot_fvu"])} | " +
                    $"{Num(row["scratch_final_ev"])} | {Num(row["warm_final_ev"])} | " +
                    string.Join(" | ", savings.Select(s => s!["saving"] is { } v ? $"{v.GetValue<double>() * 100:F1}%" : "n/a")) + " |");
            }
        }
        md.AppendLine($"{sweep.Points.Count} points; {sweep.Points.Count - missing.Count} finished{(missing.Count > 0 ? $"; not finished: {string.Join(", ", missing)}" : "")}. " +
            "Each row is one SAE width of one point's report; savings are the warm start's relative FLOPs saving at each threshold (docs/metrics.md).\n");
        md.AppendLine("## Points\n");
        md.AppendLine("| point | pair | layers | width | k | source FVU | zero-shot FVU | scratch final EV | warm final EV | " + string.Join(" | ", (thresholds ?? []).Select(t => $"saving {t}")) + " |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|" + string.Concat(Enumerable.Repeat("---|", thresholds?.Length ?? 0)));
        md.Append(table);
        var json = new JsonObject { ["schema"] = "stitching.sweep-report/1", ["sweep"] = sweep.Name, ["points"] = sweep.Points.Count, ["missing"] = new JsonArray(missing.Select(m => (JsonNode)m).ToArray()), ["sweep_rows"] = rows };
        return (md.ToString(), json, missing.Count);
    }

    private static string Slug(string s) => new string(s.ToLowerInvariant().Select(ch => char.IsAsciiLetterOrDigit(ch) ? ch : '-').ToArray()).Trim('-');
}
