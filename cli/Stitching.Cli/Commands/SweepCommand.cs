using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Grpc.Core;
using k8s;
using k8s.Models;
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
public static class SweepCommand
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
            Console.WriteLine($"sweep {sweep.Name}: {sweep.Points.Count} points, parallelism {sweep.Parallelism}");
            foreach (var p in sweep.Points)
                Console.WriteLine($"  {p.Index,4}  {Hash(p)[..12]}  {(await FinishedAsync(c, p, ct) ? "finished" : "to run  ")}  {p.Name}");
            return 0;
        }));
        return command;
    }

    private static Command Run()
    {
        var parallelism = new Option<int?>("--parallelism") { Description = "Points running at once (default: the sweep's parallelism)." };
        var command = new Command("run", "Run every unfinished point, at most --parallelism at once; finished points are skipped.") { SpecArgument, parallelism };
        command.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var sweep = Load(parse);
            var slots = new SemaphoreSlim(Math.Max(1, parse.GetValue(parallelism) ?? sweep.Parallelism));
            var failed = 0;
            var tasks = sweep.Points.Select(async p =>
            {
                await slots.WaitAsync(ct);
                try
                {
                    if (await FinishedAsync(c, p, ct)) { Console.WriteLine($"point {p.Index} {p.Name}: skipped (finished; report {ExperimentSpecs.ReportRef(Hash(p)).Id})"); return; }
                    Console.WriteLine($"point {p.Index} {p.Name}: running");
                    var result = await RunPointAsync(c, p, ct);
                    Console.WriteLine($"point {p.Index} {p.Name}: done ({result.Stages.Count(s => s.Reused)} of {result.Stages.Count} stages reused; report {result.Report.Id})");
                }
                catch (RpcException e)
                {
                    Interlocked.Increment(ref failed);
                    Console.WriteLine($"point {p.Index} {p.Name}: failed: {e.Status.Detail}");
                }
                finally { slots.Release(); }
            }).ToList();
            await Task.WhenAll(tasks);
            Console.WriteLine($"sweep {sweep.Name}: {sweep.Points.Count - failed} of {sweep.Points.Count} points finished");
            return failed == 0 ? 0 : 1;
        }));
        return command;
    }

    private static Task<ExperimentResult> RunPointAsync(ServerConnection c, SweepPoint p, CancellationToken ct) => ExperimentClient.RunAsync(c, p.Spec, ct, progress: false);

    private static Command Point()
    {
        var index = new Option<int?>("--index") { Description = "The point to run (default: $JOB_COMPLETION_INDEX, set by a Kubernetes Indexed Job)." };
        var command = new Command("point", "Run one point of a sweep (what each pod of the Indexed Job runs); a finished point returns at once.") { SpecArgument, index };
        command.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var sweep = Load(parse);
            var i = parse.GetValue(index) ?? (int.TryParse(Environment.GetEnvironmentVariable("JOB_COMPLETION_INDEX"), out var e) ? e : -1);
            if (i < 0 || i >= sweep.Points.Count) throw new ArgumentException($"--index: {i} is not a point of {sweep.Name} (0 to {sweep.Points.Count - 1}); give --index or set JOB_COMPLETION_INDEX.");
            var p = sweep.Points[i];
            if (await FinishedAsync(c, p, ct)) { Console.WriteLine($"point {i} {p.Name}: finished already (report {ExperimentSpecs.ReportRef(Hash(p)).Id})"); return 0; }
            var result = await RunPointAsync(c, p, ct);
            Console.WriteLine($"point {i} {p.Name}: done ({result.Stages.Count(s => s.Reused)} of {result.Stages.Count} stages reused; report {result.Report.Id})");
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
            Console.WriteLine(markdown);
            ReportCommand.Print(ReportWriter.Write(path, $"Sweep {sweep.Name}", markdown, json));
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

    private static Command Render()
    {
        var image = new Option<string>("--image") { Description = "Image with the stitch CLI (deploy/README).", Required = true };
        var ns = new Option<string?>("--namespace") { Description = "Namespace of the Job and ConfigMap (default: the kubectl context's)." };
        var server = new Option<string>("--eval-address") { Description = "The eval service in the cluster (default http://eval:50051, deploy/k8s).", DefaultValueFactory = _ => "http://eval:50051" };
        var output = new Option<string?>("--out") { Description = "Write the manifests here instead of stdout." };
        var command = new Command("render", "Emit a Kubernetes Indexed Job (one pod per point) and a ConfigMap holding the sweep file.") { SpecArgument, image, ns, server, output };
        command.SetAction(parse =>
        {
            var file = parse.GetValue(SpecArgument)!;
            var sweep = Load(parse);
            var yaml = RenderJob(sweep, File.ReadAllText(file), parse.GetValue(image)!, parse.GetValue(ns), parse.GetValue(server)!);
            if (parse.GetValue(output) is { } path) File.WriteAllText(path, yaml);
            else Console.Write(yaml);
            return 0;
        });
        return command;
    }

    /// <summary>The ConfigMap (the sweep file as given) and the Indexed Job whose pod i runs `stitch sweep point` for point i against the eval service.</summary>
    public static string RenderJob(Sweep sweep, string sweepFile, string image, string? ns, string evalAddress)
    {
        var name = "sweep-" + Slug(sweep.Name);
        if (name.Length > 52) name = name[..52].TrimEnd('-'); // Job names get a pod suffix; keep the total under 63
        var labels = new Dictionary<string, string> { ["app.kubernetes.io/part-of"] = "stitching", ["app.kubernetes.io/component"] = "sweep", ["stitching.dev/sweep"] = name };
        var configMap = new V1ConfigMap
        {
            ApiVersion = "v1", Kind = "ConfigMap",
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns, Labels = labels },
            Data = new Dictionary<string, string> { ["sweep.yaml"] = sweepFile },
        };
        var job = new V1Job
        {
            ApiVersion = "batch/v1", Kind = "Job",
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns, Labels = labels },
            Spec = new V1JobSpec
            {
                CompletionMode = "Indexed", Completions = sweep.Points.Count, Parallelism = Math.Min(sweep.Parallelism, sweep.Points.Count),
                BackoffLimitPerIndex = 2, MaxFailedIndexes = sweep.Points.Count, PodFailurePolicy = null,
                Template = new V1PodTemplateSpec
                {
                    Metadata = new V1ObjectMeta { Labels = labels },
                    Spec = new V1PodSpec
                    {
                        RestartPolicy = "Never",
                        SecurityContext = new V1PodSecurityContext { RunAsNonRoot = true, RunAsUser = 10001, RunAsGroup = 10001, SeccompProfile = new V1SeccompProfile { Type = "RuntimeDefault" } },
                        Containers =
                        [
                            new V1Container
                            {
                                Name = "point", Image = image,
                                Command = ["dotnet", "/app/stitch.dll"],
                                Args = ["sweep", "point", "/sweep/sweep.yaml", "--server", evalAddress],
                                Env =
                                [
                                    new V1EnvVar { Name = "STITCHING_TOKEN", ValueFrom = new V1EnvVarSource { SecretKeyRef = new V1SecretKeySelector { Name = "stitching-auth", Key = "client-token", Optional = true } } },
                                ],
                                VolumeMounts = [new V1VolumeMount { Name = "sweep", MountPath = "/sweep", ReadOnlyProperty = true }],
                                Resources = new V1ResourceRequirements
                                {
                                    Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("100m"), ["memory"] = new("256Mi") },
                                    Limits = new Dictionary<string, ResourceQuantity> { ["memory"] = new("1Gi") },
                                },
                                SecurityContext = new V1SecurityContext { AllowPrivilegeEscalation = false, ReadOnlyRootFilesystem = true, Capabilities = new V1Capabilities { Drop = ["ALL"] } },
                            },
                        ],
                        Volumes = [new V1Volume { Name = "sweep", ConfigMap = new V1ConfigMapVolumeSource { Name = name } }],
                    },
                },
            },
        };
        return $"# stitch sweep render: {sweep.Points.Count} points of {sweep.Name}; pod i runs point i (stitch sweep list shows them).\n" +
            KubernetesYaml.Serialize(configMap).TrimEnd() + "\n---\n" + KubernetesYaml.Serialize(job).TrimEnd() + "\n";
    }

    private static string Slug(string s) => new string(s.ToLowerInvariant().Select(ch => char.IsAsciiLetterOrDigit(ch) ? ch : '-').ToArray()).Trim('-');
}
