using System.Text.RegularExpressions;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Eval.V1;
using Stitching.Contracts.Sae.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Stitches;
using Stitching.Sae.Storage;
using Stitching.Tests.Fixtures;
using Stitching.Tests.Sae;
using Xunit.Abstractions;
using static TorchSharp.torch;
using P = Stitching.Eval.Probes.ProbeEvaluator;

namespace Stitching.Tests.Eval;

/// <summary>
/// EvaluateProbes end to end over gRPC on the tiny models and real text (this repository's docs). With A = B
/// and an identity stitch every transferred probe must score exactly what the probe on A scores (the
/// transfer, the P_down move and the reuse without retraining are then identities), which checks the
/// plumbing against an independent fact; a learnable task must beat chance; two different models run
/// every probe kind.
/// </summary>
[Trait("Category", "Integration")]
public class ProbeEvaluationTests(ITestOutputHelper output)
{
    private const string Hook = "blocks.1.hook_resid_pre";
    private static readonly HashSet<string> FunctionWords = new(StringComparer.OrdinalIgnoreCase) { "the", "a", "an", "of", "and", "to", "is", "in", "for", "on", "with", "by" };

    /// <summary>Token-level: every word is a span, labelled 1 for a function word and 0 otherwise.</summary>
    private static ProbeDataset FunctionWordSet()
    {
        var set = new ProbeDataset { ClassNames = { "content", "function" }, Classes = { 1 } };
        foreach (var text in TinyModels.Documents())
        {
            var example = new LabelledText { Text = text, Label = -1 };
            foreach (Match m in Regex.Matches(text, @"[A-Za-z]+"))
                example.Spans.Add(new LabelSpan { Start = m.Index, End = m.Index + m.Length, Label = FunctionWords.Contains(m.Value) ? 1 : 0 });
            if (example.Spans.Count > 0) set.Examples.Add(example);
        }
        return set;
    }

    private static Task<ProbeEvaluation> RunAsync(TestServer server, EvaluateProbesRequest request) =>
        OperationWaiter.ResultAsync<ProbeEvaluation>(server.Channel, new EvalService.EvalServiceClient(server.Channel).EvaluateProbesAsync(request).ResponseAsync, TimeSpan.FromMinutes(2));

    [Fact]
    public async Task Identity_transfer_scores_exactly_like_the_probe_on_A_and_a_learnable_task_beats_chance()
    {
        await using var server = await TestServer.StartAsync(redis: false, testJobs: false, modelsRoot: TinyModels.ModelsRoot);
        var store = server.Server.Services.GetRequiredService<ArtifactStore>();
        var saeRef = new ArtifactRef { Kind = "sae", Id = "sae-probe-a" };
        using (var sae = SaeFixtures.RandomSae("topk", 32, 64, 8, true, 11)) SaeArtifacts.Save(store, saeRef, sae);
        var identity = SaeFixtures.SaveStitch(store, "st-identity", new AffineStitch(eye(32), zeros(32), eye(32), zeros(32)));
        var transferred = await new SaeService.SaeServiceClient(server.Channel).TransferAsync(new TransferRequest { Sae = saeRef, Stitch = identity, Model = "tiny-a", Hook = Hook });

        var e = await RunAsync(server, new EvaluateProbesRequest
        {
            ModelA = new ModelSpec { Model = "tiny-a" }, ModelB = new ModelSpec { Model = "tiny-a" }, Stitch = identity,
            SaeA = saeRef, SaeTransferred = transferred.Ref, SaeB = saeRef, Dataset = FunctionWordSet(), K = { 1, 2, 5 }, MaxExamplesPerClass = 400,
        });
        var task = Assert.Single(e.Tasks);
        foreach (var s in task.Scores) output.WriteLine($"{s.Probe} k={s.K}: {s.Accuracy:F3} [{s.CiLow:F3}, {s.CiHigh:F3}] n={s.Test} l2={s.L2}");
        Assert.Equal(Hook, e.HookA);
        Assert.True(task.Train > 0 && task.Validation > 0 && task.Test > 0);
        Assert.True(task.Test % 2 == 0 && task.Test <= 800, $"balanced test split: {task.Test}");
        ProbeScore One(string probe, int k) => Assert.Single(task.Scores, s => s.Probe == probe && s.K == k);
        var denseA = One(P.DenseA, 0);
        Assert.True(denseA.Accuracy > 0.6, $"function words vs content words from the residual: {denseA.Accuracy}");
        foreach (var probe in new[] { P.DenseB, P.DenseTransferred })
            Assert.Equal((denseA.Accuracy, denseA.Test), (One(probe, 0).Accuracy, One(probe, 0).Test));
        foreach (var k in new[] { 1, 2, 5 })
        {
            var a = One(P.SparseA, k);
            Assert.Equal(k, a.Latents.Count);
            foreach (var probe in new[] { P.SparseTransferred, P.SparseRetrained, P.SparseNativeB })
            {
                var other = One(probe, k);
                Assert.Equal((a.Accuracy, a.Test), (other.Accuracy, other.Test));
                Assert.Equal(a.Latents, other.Latents);
            }
            var random = One(P.SparseRandom, k);
            Assert.InRange(random.Accuracy, 0, 1);
        }
        foreach (var s in task.Scores) Assert.InRange(s.Accuracy, s.CiLow, s.CiHigh);
    }

    [Fact]
    public async Task Two_models_of_different_widths_run_every_probe_and_bad_requests_name_their_field()
    {
        await using var server = await TestServer.StartAsync(redis: false, testJobs: false, modelsRoot: TinyModels.ModelsRoot);
        var store = server.Server.Services.GetRequiredService<ArtifactStore>();
        var saeRef = new ArtifactRef { Kind = "sae", Id = "sae-probe-a2" };
        using (var random = SaeFixtures.RandomSae("topk", 32, 64, 8, true, 12)) SaeArtifacts.Save(store, saeRef, random);
        var stitch = SaeFixtures.SaveStitch(store, "st-random", SaeFixtures.RandomStitch(32, 48, 3));
        var transferred = await new SaeService.SaeServiceClient(server.Channel).TransferAsync(new TransferRequest { Sae = saeRef, Stitch = stitch, Model = "tiny-b", Hook = "blocks.2.hook_resid_pre" });
        // document level: a paragraph (rows of 32 tokens, mean-pooled) of docs/metrics.md against one of the README
        var docs = new ProbeDataset { ClassNames = { "readme", "metrics" } };
        foreach (var (file, label) in new[] { ("README.txt", 0), ("docs-metrics.txt", 1) })
            foreach (var p in File.ReadAllText(TinyModels.CorpusFile(file)).Split("\n\n").Where(p => p.Trim().Length > 40))
                docs.Examples.Add(new LabelledText { Text = p, Label = label });
        var request = new EvaluateProbesRequest
        {
            ModelA = new ModelSpec { Model = "tiny-a" }, ModelB = new ModelSpec { Model = "tiny-b" }, Stitch = stitch,
            SaeA = saeRef, SaeTransferred = transferred.Ref, Dataset = docs, K = { 1, 4 }, Context = 32,
        };
        var e = await RunAsync(server, request);
        var task = Assert.Single(e.Tasks);
        foreach (var s in task.Scores) output.WriteLine($"{s.Probe} k={s.K}: {s.Accuracy:F3} [{s.CiLow:F3}, {s.CiHigh:F3}] n={s.Test} l2={s.L2}");
        output.WriteLine($"train {task.Train} validation {task.Validation} test {task.Test}");
        Assert.Equal("metrics vs readme", task.Name);
        Assert.False(e.TokenLevel);
        Assert.Equal(new[] { P.DenseA, P.DenseB, P.DenseTransferred, P.SparseA, P.SparseTransferred, P.SparseRetrained, P.SparseRandom }.Order(),
            task.Scores.Select(s => s.Probe).Distinct().Order());
        // random tiny models: no accuracy to expect, but every probe scored the whole balanced test split
        Assert.All(task.Scores, s => Assert.Equal(task.Test, s.Test));
        Assert.True(task.Test > 20 && task.Test % 2 == 0);

        var eval = new EvalService.EvalServiceClient(server.Channel);
        async Task<RpcException> Refused(EvaluateProbesRequest r) => await Assert.ThrowsAsync<RpcException>(() => eval.EvaluateProbesAsync(r).ResponseAsync);
        var noData = await Refused(new EvaluateProbesRequest(request) { Dataset = null });
        Assert.Equal(StatusCode.InvalidArgument, noData.StatusCode);
        Assert.Contains("dataset", noData.Status.Detail);
        var swapped = await Refused(new EvaluateProbesRequest(request) { SaeTransferred = saeRef }); // an SAE of width 32 on tiny-b (48)
        Assert.Equal(StatusCode.FailedPrecondition, swapped.StatusCode);
        Assert.Contains("sae_transferred", swapped.Status.Detail);
        var overlapping = new EvaluateProbesRequest(request) { Dataset = new ProbeDataset { Examples = { new LabelledText { Text = "one two", Label = -1, Spans = { new LabelSpan { Start = 0, End = 5, Label = 1 }, new LabelSpan { Start = 2, End = 7, Label = 0 } } } } } };
        Assert.Contains("spans", (await Refused(overlapping)).Status.Detail);
        var unknown = await Refused(new EvaluateProbesRequest(request) { Dataset = new ProbeDataset { Named = "brown:nope" } });
        Assert.Contains("dataset.named", unknown.Status.Detail);
    }

    [Fact]
    public async Task The_cli_reads_labelled_jsonl_with_string_labels_and_names_a_bad_line()
    {
        await using var server = await TestServer.StartAsync(redis: false, testJobs: false, modelsRoot: TinyModels.ModelsRoot);
        using var dir = new TempDir("probe-jsonl");
        var file = Path.Combine(dir.Path, "set.jsonl");
        // string labels become class ids in sorted order: "metrics" 0, "readme" 1; the split is given per line
        var lines = new List<string>();
        foreach (var (name, label) in new[] { ("README.txt", "readme"), ("docs-metrics.txt", "metrics") })
            foreach (var (p, i) in File.ReadAllText(TinyModels.CorpusFile(name)).Split("\n\n").Where(p => p.Trim().Length > 40).Select((p, i) => (p, i)))
                lines.Add(System.Text.Json.JsonSerializer.Serialize(new { text = p, label, split = (i % 4) switch { < 2 => "train", 2 => "validation", _ => "test" } }));
        File.WriteAllLines(file, lines);
        string Cli(params string[] args) => Python.RunProgram("dotnet", [StitchCli.Dll(), "eval", "probes", "--server", server.Server.Address,
            "--model-a", "tiny-a", "--model-b", "tiny-b", "--hook-a", Hook, "--hook-b", "blocks.2.hook_resid_pre", .. args]);
        var reportPath = Path.Combine(dir.Path, "report", "probes.md");
        var printed = Cli("--jsonl", file, "--json", "--report", reportPath);
        using var json = System.Text.Json.JsonDocument.Parse(printed);
        var task = json.RootElement.GetProperty("tasks")[0];
        // --report: the same evaluation as Markdown, report.json (under "probes"), a self-contained page and one figure per task
        var report = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.ChangeExtension(reportPath, ".json")))!;
        Assert.Equal(System.Text.Json.Nodes.JsonNode.Parse(printed)!.ToJsonString(), report["probes"]![0]!.ToJsonString());
        Assert.Contains("readme vs metrics", File.ReadAllText(reportPath));
        Assert.Single(Directory.GetFiles(Path.Combine(dir.Path, "report", "probes-figures"), "*.png"));
        Assert.Equal((1, 1), Stitching.Tests.Reports.Chromium.ImagesLoaded(Path.ChangeExtension(reportPath, ".html"), dir.Path));
        Assert.Equal("readme vs metrics", task.GetProperty("name").GetString());
        Assert.Equal(1, task.GetProperty("positive").GetInt32());
        Assert.True(task.GetProperty("test").GetInt64() > 0);
        Assert.Equal(new[] { P.DenseA, P.DenseB }, task.GetProperty("scores").EnumerateArray().Select(x => x.GetProperty("probe").GetString()));

        File.WriteAllLines(file, [lines[0], "{\"text\": 3, \"label\": \"readme\"}"]);
        var e = Assert.Throws<InvalidOperationException>(() => Cli("--jsonl", file));
        Assert.Contains(":2: needs a string \"text\"", e.Message);
    }
}
