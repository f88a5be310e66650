using System.Text.Json.Nodes;
using Grpc.Core;
using Grpc.Net.Client;
using Json.Schema;
using Microsoft.Extensions.DependencyInjection;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Eval.V1;
using Stitching.Contracts.Sae.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Operations;
using Stitching.Eval.Experiments;
using Stitching.Tests.Fixtures;
using Xunit.Abstractions;

namespace Stitching.Tests.Experiments;

/// <summary>
/// The "eval.experiment" operation end to end over real gRPC on the tiny models and real text (this repository's
/// docs): every stage recorded with its artifacts, report.json valid against schemas/report.schema.json, a second
/// submission reusing every stage, and kill -9 during an SAE stage costing only that stage.
/// </summary>
[Trait("Category", "Integration")]
public class ExperimentRunTests(ITestOutputHelper output)
{
    /// <summary>Train on two thirds of the documents, hold out the rest; small enough for a few seconds per stage.</summary>
    public static ExperimentSpec TinySpec(long saeEpochs = 2)
    {
        var docs = TinyModels.Documents();
        var spec = new ExperimentSpec
        {
            Name = "tiny",
            ModelA = new ModelSpec { Model = "tiny-a" }, ModelB = new ModelSpec { Model = "tiny-b" },
            TrainCorpus = new CorpusSpec { Texts = new InlineTexts { Texts = { docs.Where((_, i) => i % 3 != 0) } } },
            TestCorpus = new CorpusSpec { Texts = new InlineTexts { Texts = { docs.Where((_, i) => i % 3 == 0) } } },
            Context = 32, TrainTokens = 8192, TestRows = 16, SpliceRows = 8,
            Stitch = new StitchSettings { AdamSteps = 20 },
            Sae = new SaeSettings { Widths = { 96 }, K = 4, BatchSize = 128, Epochs = (int)saeEpochs, LogEvery = 4 },
            Evaluations = { "splice", "sae_eval" },
        };
        return spec;
    }

    private static async Task<string> ReadTextAsync(GrpcChannel channel, ArtifactRef report, string file)
    {
        using var call = new ArtifactsService.ArtifactsServiceClient(channel).ReadFile(new ReadFileRequest { Ref = report, File = file });
        var bytes = new MemoryStream();
        string? sha = null;
        await foreach (var chunk in call.ResponseStream.ReadAllAsync())
        {
            sha ??= chunk.Sha256;
            chunk.Data.WriteTo(bytes);
        }
        Assert.Equal(sha, ContentIds.Sha256Hex(bytes.ToArray())); // the first chunk's digest is the file's
        return System.Text.Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>Loaded once: the library registers a schema by its $id, and a second load of the same $id is an error.</summary>
    private static readonly Lazy<JsonSchema> Schema = new(() => JsonSchema.FromFile(Path.Combine(Python.RepoRoot(), "schemas", "report.schema.json")));

    public static JsonObject ValidReport(string json)
    {
        var schema = Schema.Value;
        var node = JsonNode.Parse(json)!;
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        var result = schema.Evaluate(doc.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
        Assert.True(result.IsValid, "report.json does not validate: " + string.Join("; ",
            (result.Details ?? []).Where(d => d.Errors is { Count: > 0 }).SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}")).Take(10)));
        return (JsonObject)node;
    }

    [Fact]
    public async Task An_experiment_records_every_stage_writes_a_valid_report_and_a_resubmission_reuses_every_stage()
    {
        await using var server = await TestServer.StartAsync(redis: false, testJobs: false, modelsRoot: TinyModels.ModelsRoot);
        var store = server.Server.Services.GetRequiredService<ArtifactStore>();
        var client = new ExperimentsService.ExperimentsServiceClient(server.Channel);
        var spec = TinySpec();
        var op = await client.RunExperimentAsync(new RunExperimentRequest { Spec = spec });
        Assert.Equal(ExperimentHandler.OperationKind, op.Kind);
        var done = await OperationWaiter.SucceededAsync(server.Channel, op.Id, TimeSpan.FromMinutes(5));
        var result = done.Result.Unpack<ExperimentResult>();
        var names = result.Stages.Select(s => s.Name).ToList();
        output.WriteLine(string.Join(", ", names));
        Assert.Equal(["extract.train", "extract.test", "match", "fit.lstsq", "fit.adam", "splice", "sae.a.96", "sae.transfer.96", "eval.transfer.96",
            "sae.scratch.96", "sae.warm.96", "sae.compare.96", "eval.source.96", "eval.scratch.96", "eval.warm.96", "eval.random.96", "report"], names);
        Assert.All(result.Stages, s => Assert.False(s.Reused));
        Assert.All(result.Stages.SelectMany(s => s.Artifacts), a => Assert.True(store.Exists(a), $"{a.Display()} is not in the store"));
        Assert.Equal(result.Report, done.Outputs.Single());
        Assert.Equal(ExperimentSpecs.Hash(ExperimentSpecs.Normalize(spec)), result.SpecHash);

        // The ledger is the stages' own FLOPs, and each equals what its artifact's manifest says it cost.
        Assert.Equal(result.Stages.Sum(s => s.Flops), result.Ledger.TotalFlops, 6);
        var fit = result.Stages.Single(s => s.Name == "fit.lstsq");
        Assert.Equal(store.GetManifest(fit.Artifacts[0]).Ledger.TotalFlops, fit.Flops, 6);
        var train = result.Stages.Single(s => s.Name == "sae.a.96");
        Assert.Equal(store.GetManifest(train.Artifacts[0]).Ledger.TotalFlops, train.Flops, 6);
        var warm = result.Stages.Single(s => s.Name == "sae.warm.96");
        var warmLedger = store.GetManifest(warm.Artifacts[0]).Ledger;
        Assert.Equal(warmLedger.Entries.Where(e => e.Phase == "sae.train").Sum(e => e.Flops), warm.Flops, 6); // the stitch's FLOPs are fit's, not counted twice
        Assert.True(warmLedger.TotalFlops > warm.Flops);

        var json = ValidReport(await ReadTextAsync(server.Channel, result.Report, "report.json"));
        var md = await ReadTextAsync(server.Channel, result.Report, "report.md");
        var html = await ReadTextAsync(server.Channel, result.Report, "report.html");
        Assert.Contains("## Stages and FLOP ledger", md);
        Assert.Contains("<img", html);
        Assert.False(json.ContainsKey("probes"));
        // Numbers in the report are the services' own: the source SAE's held-out FVU is its manifest's metric, and the
        // transfer's zero-shot row is EvaluateSae's, asked again here.
        var sae = (JsonObject)json["sae"]![0]!;
        var sourceRef = result.Stages.Single(s => s.Name == "sae.a.96").Artifacts[0];
        Assert.Equal(store.GetManifest(sourceRef).Metrics["heldout_fvu"], sae["source_fvu"]!.GetValue<double>(), 9);
        var transferRef = result.Stages.Single(s => s.Name == "sae.transfer.96").Artifacts[0];
        var ids = TokenRowsOfTest(result, store);
        var again = await new EvalService.EvalServiceClient(server.Channel).EvaluateSaeAsync(new EvaluateSaeRequest { Model = spec.ModelB, Sae = transferRef, TokenIds = ids });
        Assert.Equal(again.Fvu, sae["zero_shot_fvu"]!.GetValue<double>(), 9);

        // The same spec again (under another name): every stage is reused and the report is the same artifact.
        var renamed = spec.Clone();
        renamed.Name = "tiny again";
        var second = (await OperationWaiter.SucceededAsync(server.Channel, (await client.RunExperimentAsync(new RunExperimentRequest { Spec = renamed })).Id)).Result.Unpack<ExperimentResult>();
        Assert.All(second.Stages, s => Assert.True(s.Reused, $"{s.Name} ran again"));
        Assert.Equal(result.Report, second.Report);
        Assert.Equal(result.Stages.Select(s => s.OperationId), second.Stages.Select(s => s.OperationId));
    }

    /// <summary>The held-out rows the experiment evaluated on: its test activation set's token ids as [rows, context].</summary>
    private static Stitching.Contracts.Common.V1.Tensor TokenRowsOfTest(ExperimentResult result, ArtifactStore store)
    {
        var set = result.Stages.Single(s => s.Name == "extract.test").Result.Unpack<ExtractResult>().ActivationSets[0];
        var context = result.Spec.Context;
        var ids = new List<long>();
        foreach (var f in store.GetManifest(set).Files.Where(f => f.Name.EndsWith(".safetensors", StringComparison.Ordinal)).OrderBy(f => f.Name, StringComparer.Ordinal))
        {
            using var reader = new Stitching.Core.Safetensors.SafetensorsReader(store.OpenRead(set, f.Name), f.Name);
            var t = reader.Read("token_ids");
            ids.AddRange(t.DType == Stitching.Core.Tensors.DType.I64
                ? System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(t.Data.Span).ToArray()
                : t.ToInts("token_ids").Select(x => (long)x));
        }
        var rows = ids.Count / context;
        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(ids.Take(rows * context).ToArray().AsSpan()).ToArray();
        return Stitching.Core.Tensors.TensorCodec.ToProto(new Stitching.Core.Tensors.HostTensor("token_ids", Stitching.Core.Tensors.DType.I64, [rows, context], bytes));
    }

    [Fact]
    public async Task Kill_9_during_an_SAE_stage_then_restart_and_resubmit_redoes_no_finished_stage_and_matches_an_uninterrupted_run()
    {
        using var storeDir = new TempDir("experiment-kill");
        var spec = TinySpec(saeEpochs: 8);
        var env = new Dictionary<string, string> { ["Stitching__ModelsRoot"] = TinyModels.ModelsRoot };
        string id, firstLog;
        using (var first = await StitchCli.ServeAsync(storeDir.Path, env))
        {
            id = (await new ExperimentsService.ExperimentsServiceClient(first.Channel).RunExperimentAsync(new RunExperimentRequest { Spec = spec })).Id;
            using var call = new OperationsService.OperationsServiceClient(first.Channel).WatchOperation(new WatchOperationRequest { Id = id });
            await foreach (var o in call.ResponseStream.ReadAllAsync())
            {
                Assert.False(OperationRunner.IsFinal(o.State), $"the experiment ended ({o.State}) before its scratch SAE stage was seen: {o.Error}");
                if (o.Progress?.Phase is { } phase && phase.StartsWith("sae.scratch.96: train", StringComparison.Ordinal) && o.Progress.Metrics.GetValueOrDefault("stage_eta_seconds") > 0) break;
            }
            first.KillHard();
            firstLog = first.Log;
        }
        var before = Directory.EnumerateFiles(Path.Combine(storeDir.Path, "_stages"), "*.pb").Select(f => StageRecord.Parser.ParseFrom(File.ReadAllBytes(f))).ToDictionary(r => r.Name);
        Assert.Equal(StageState.Running, before["sae.scratch.96"].State);
        var finishedBefore = before.Values.Where(r => r.State == StageState.Succeeded).ToList();
        Assert.Contains(finishedBefore, r => r.Name == "sae.a.96");
        output.WriteLine("finished before the kill: " + string.Join(", ", finishedBefore.Select(r => r.Name)));

        using var second = await StitchCli.ServeAsync(storeDir.Path, env);
        var resubmitted = await new ExperimentsService.ExperimentsServiceClient(second.Channel).RunExperimentAsync(new RunExperimentRequest { Spec = spec });
        if (resubmitted.Id != id)
        {
            var old = await new OperationsService.OperationsServiceClient(second.Channel).GetOperationAsync(new GetOperationRequest { Id = id });
            output.WriteLine($"the interrupted experiment {id}: {old.State}, attempt {old.Attempt}, {old.Error}\nsecond server:\n{second.Log}");
        }
        Assert.Equal(id, resubmitted.Id); // the restarted host resumed the experiment; the resubmission joins it
        var done = await OperationWaiter.SucceededAsync(second.Channel, id, TimeSpan.FromMinutes(5));
        Assert.Equal(2, done.Attempt);
        var result = done.Result.Unpack<ExperimentResult>();
        foreach (var r in finishedBefore)
        {
            var after = result.Stages.Single(s => s.Name == r.Name);
            Assert.True(after.Reused, $"{r.Name} finished before the kill but ran again");
            Assert.Equal(r.OperationId, after.OperationId);
            Assert.Equal(r.Artifacts, after.Artifacts);
            Assert.Equal(r.Flops, after.Flops);
        }
        // The SAE stage in flight was followed, not started again: its training operation resumed from its checkpoint.
        var scratch = result.Stages.Single(s => s.Name == "sae.scratch.96");
        if (before["sae.scratch.96"].OperationId != scratch.OperationId)
        {
            var old = await new OperationsService.OperationsServiceClient(second.Channel).GetOperationAsync(new GetOperationRequest { Id = before["sae.scratch.96"].OperationId });
            output.WriteLine($"the interrupted training operation {old.Id}: {old.State}, attempt {old.Attempt}, {old.Error}\nfirst server:\n{firstLog}\nsecond server:\n{second.Log}");
        }
        Assert.Equal(before["sae.scratch.96"].OperationId, scratch.OperationId);
        Assert.Equal(2, (await new OperationsService.OperationsServiceClient(second.Channel).GetOperationAsync(new GetOperationRequest { Id = scratch.OperationId })).Attempt);
        var interrupted = ValidReport(await ReadTextAsync(second.Channel, result.Report, "report.json"));

        // An uninterrupted run of the same spec on a fresh store gives the same report numbers.
        await using var clean = await TestServer.StartAsync(redis: false, testJobs: false, modelsRoot: TinyModels.ModelsRoot);
        var reference = (await OperationWaiter.SucceededAsync(clean.Channel, (await new ExperimentsService.ExperimentsServiceClient(clean.Channel).RunExperimentAsync(new RunExperimentRequest { Spec = spec })).Id, TimeSpan.FromMinutes(5)))
            .Result.Unpack<ExperimentResult>();
        var uninterrupted = ValidReport(await ReadTextAsync(clean.Channel, reference.Report, "report.json"));
        Assert.Equal(reference.Ledger.TotalFlops, result.Ledger.TotalFlops, 3);
        void Close(string path, JsonNode? x, JsonNode? y)
        {
            var (a, b) = (x!.GetValue<double>(), y!.GetValue<double>());
            Assert.True(Math.Abs(a - b) <= 1e-4 * Math.Max(1, Math.Abs(b)), $"{path}: {a} after the kill, {b} uninterrupted");
        }
        foreach (var key in new[] { "source_fvu", "zero_shot_fvu", "init_fvu", "scratch_final_ev", "warm_final_ev" })
            Close($"sae[0].{key}", interrupted["sae"]![0]![key], uninterrupted["sae"]![0]![key]);
        for (var i = 0; i < uninterrupted["splice"]!.AsArray().Count; i++) Close($"splice[{i}].ce", interrupted["splice"]![i]!["ce"], uninterrupted["splice"]![i]!["ce"]);
        for (var i = 0; i < uninterrupted["sae_eval"]!.AsArray().Count; i++)
            foreach (var key in new[] { "fvu", "ce_spliced", "kl" })
                Close($"sae_eval[{i}].{key}", interrupted["sae_eval"]![i]![key], uninterrupted["sae_eval"]![i]![key]);
    }
}
