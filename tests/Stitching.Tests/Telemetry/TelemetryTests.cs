using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Eval.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Telemetry;
using Stitching.Eval.Experiments;
using Stitching.Tests.Experiments;
using Stitching.Tests.Fixtures;
using Xunit.Abstractions;

namespace Stitching.Tests.Telemetry;

/// <summary>
/// Tracing listeners are process-wide: a span or metric from another test's server would land in this test's
/// exporter. The collection runs alone (after the parallel ones), so what the exporters see is this server's.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TelemetryCollection
{
    public const string Name = "telemetry (runs alone)";
}

/// <summary>
/// OpenTelemetry as an operator sees it: a real experiment (extract -> fit -> train, each stage a gRPC call from
/// the eval service to the service that owns it) through the all-in-one host, exported in memory: span names,
/// the parent/child chain across the services' gRPC calls, the attributes, and the throughput and cache metrics.
/// </summary>
[Collection(TelemetryCollection.Name)]
[Trait("Category", "Integration")]
public class TelemetryTests(ITestOutputHelper output)
{
    private static readonly ActivitySource Client = new("Stitching.Tests.Client");

    [Fact]
    public async Task An_experiment_is_one_trace_across_the_services_with_work_attributes_and_throughput_metrics()
    {
        var spans = new List<Activity>();
        var metrics = new List<MetricSnapshot>();
        await using var server = await TestServer.StartAsync(redis: true, testJobs: false, modelsRoot: TinyModels.ModelsRoot, configure: b =>
        {
            b.Services.ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(spans));
            b.Services.ConfigureOpenTelemetryMeterProvider(m => m.AddInMemoryExporter(metrics));
        });
        var store = server.Server.Services.GetRequiredService<ArtifactStore>();
        var spec = ExperimentRunTests.TinySpec(saeEpochs: 1);
        spec.Stitch = new StitchSettings { AdamSteps = -1 };
        spec.Evaluations.Clear();
        spec.Evaluations.Add("splice");

        ExperimentResult result;
        ActivityTraceId trace;
        using (var root = Client.StartActivity("test: run an experiment", ActivityKind.Client))
        {
            Assert.NotNull(root); // the host's tracer provider listens to Stitching.* sources
            trace = root.TraceId;
            var op = await new ExperimentsService.ExperimentsServiceClient(server.Channel).RunExperimentAsync(new RunExperimentRequest { Spec = spec });
            var done = await OperationWaiter.SucceededAsync(server.Channel, op.Id, TimeSpan.FromMinutes(5));
            result = done.Result.Unpack<ExperimentResult>();
        }
        var provider = server.Server.Services.GetRequiredService<TracerProvider>();
        provider.ForceFlush();
        server.Server.Services.GetRequiredService<MeterProvider>().ForceFlush();

        List<Activity> ours;
        lock (spans) ours = spans.Where(s => s.TraceId == trace).ToList();
        var byId = ours.ToDictionary(s => s.SpanId);
        foreach (var line in Tree(ours)) output.WriteLine(line);

        // Every stage's operation ran in the client's trace, and its chain of parents reaches the client's root
        // through the eval service's outgoing gRPC call and the owning service's incoming one.
        List<Activity> Chain(Activity span)
        {
            var chain = new List<Activity> { span };
            while (chain[^1].ParentSpanId != default)
            {
                Assert.True(byId.TryGetValue(chain[^1].ParentSpanId, out var parent), $"span '{chain[^1].DisplayName}' has a parent that was not exported");
                chain.Add(parent!);
            }
            return chain;
        }
        foreach (var (kind, rpc) in new[] { ("activations.extract", "ActivationsService/Extract"), ("stitch.fit", "StitchService/Fit"), ("sae.train", "SaeService/Train") })
        {
            var operation = ours.FirstOrDefault(s => s.DisplayName == $"operation {kind}");
            Assert.True(operation is not null, $"no 'operation {kind}' span in the experiment's trace");
            var chain = Chain(operation);
            var names = chain.Select(Describe).ToList();
            output.WriteLine($"{kind}: {string.Join(" <- ", names)}");
            var server0 = chain.FindIndex(s => s.Kind == ActivityKind.Server && Describe(s).Contains(rpc));
            var client0 = chain.FindIndex(s => s.Kind == ActivityKind.Client && Describe(s).Contains(rpc));
            var experiment = chain.FindIndex(s => s.DisplayName == "operation eval.experiment");
            var submit = chain.FindIndex(s => s.Kind == ActivityKind.Server && Describe(s).Contains("ExperimentsService/RunExperiment"));
            Assert.True(0 < server0 && server0 < client0 && client0 < experiment && experiment < submit, $"unexpected chain for {kind}: {string.Join(" <- ", names)}");
            Assert.Equal("test: run an experiment", chain[^1].DisplayName);
        }

        // Attributes: model, hook, tokens, FLOPs and bytes of each unit of work, against what the store holds.
        var extracts = ours.Where(s => s.DisplayName == "activations.extract").ToList();
        Assert.NotEmpty(extracts);
        var sets = result.Stages.Where(s => s.Name.StartsWith("extract.", StringComparison.Ordinal)).SelectMany(s => s.Artifacts).Where(a => a.Kind == ArtifactKinds.ActivationSet).ToList();
        foreach (var span in extracts)
        {
            var model = (string)span.GetTagItem(StitchingTelemetry.ModelAttribute)!;
            Assert.Contains(model, new[] { "tiny-a", "tiny-b" });
            Assert.False(string.IsNullOrEmpty((string?)span.GetTagItem(StitchingTelemetry.HookAttribute)));
            var manifest = store.GetManifest(sets.Single(a => a.Id == (string?)span.GetTagItem(StitchingTelemetry.ArtifactAttribute)));
            Assert.Equal(manifest.Metadata["model"], model);
            Assert.Equal(manifest.Files.Sum(f => f.SizeBytes), Convert.ToInt64(span.GetTagItem(StitchingTelemetry.BytesAttribute)));
            Assert.Equal(manifest.Metrics["flops"], (double)span.GetTagItem(StitchingTelemetry.FlopsAttribute)!, 6);
            Assert.True(Convert.ToInt64(span.GetTagItem(StitchingTelemetry.TokensAttribute)) > 0);
        }
        var trains = ours.Where(s => s.DisplayName == "sae.train").ToList();
        var saes = result.Stages.Where(s => s.Name.StartsWith("sae.", StringComparison.Ordinal) && s.Name.Split('.').Length == 3 && s.Name.Split('.')[1] is "a" or "scratch" or "warm")
            .Select(s => store.GetManifest(s.Artifacts.Single(a => a.Kind == ArtifactKinds.Sae))).ToList();
        Assert.Equal(saes.Count, trains.Count);
        Assert.Equal(saes.Sum(m => m.Metrics["tokens"]), trains.Sum(s => Convert.ToDouble(s.GetTagItem(StitchingTelemetry.TokensAttribute))));
        Assert.Equal(saes.Sum(m => m.Ledger.Entries.Where(e => e.Phase == "sae.train").Sum(e => e.Flops)), trains.Sum(s => (double)s.GetTagItem(StitchingTelemetry.FlopsAttribute)!), 3);
        var fit = Assert.Single(ours, s => s.DisplayName == "stitch.fit");
        var stitch = store.GetManifest(result.Stages.Single(s => s.Name == "fit.lstsq").Artifacts.Single());
        Assert.Equal(stitch.Metrics["tokens"], Convert.ToDouble(fit.GetTagItem(StitchingTelemetry.TokensAttribute)));
        Assert.Equal("tiny-a -> tiny-b", fit.GetTagItem(StitchingTelemetry.ModelAttribute));

        // Redis commands are spans too (the activation shards go through the cache).
        Assert.Contains(spans.ToArray(), s => s.Source.Name.Contains("StackExchangeRedis", StringComparison.Ordinal) && (s.GetTagItem("db.system") as string) is "redis");

        // Metrics: throughput per stage, and a cache hit ratio consistent with the read counter.
        // Each service has its own meter (Stitching.Activations, .Stitch, .Sae...): a metric name's points are the
        // union over meters of each meter's last (cumulative) export.
        List<MetricPoint> Points(string name) => metrics.ToArray().Where(m => m.Name == name).GroupBy(m => m.MeterName).SelectMany(g => g.Last().MetricPoints).ToList();
        var tokensPerSecond = Points("stitching.tokens_per_second");
        var stages = tokensPerSecond.Select(p => Tag(p, StitchingTelemetry.StageAttribute)).ToHashSet();
        Assert.Superset(new HashSet<string?> { "extract", "fit", "train" }, stages);
        Assert.Equal(trains.Count, tokensPerSecond.Where(p => Tag(p, StitchingTelemetry.StageAttribute) == "train").Sum(p => p.GetHistogramCount()));
        Assert.Equal(extracts.Count, tokensPerSecond.Where(p => Tag(p, StitchingTelemetry.StageAttribute) == "extract").Sum(p => p.GetHistogramCount()));
        Assert.All(Points("stitching.flops_per_second"), p => Assert.True(p.GetHistogramSum() > 0));
        var reads = Points("stitching.cache.reads").ToDictionary(p => Tag(p, "source") ?? "", p => p.GetSumLong());
        var ratio = Points("stitching.cache.hit_ratio").Single().GetGaugeLastValueDouble();
        Assert.True(reads.GetValueOrDefault("redis") > 0, "no shard read was served by Redis, though SAE training reads each set several times");
        Assert.Equal((double)reads.GetValueOrDefault("redis") / reads.Values.Sum(), ratio, 9);
    }

    [Fact]
    public async Task Stitch_serve_exports_spans_and_metrics_over_OTLP_to_a_collector()
    {
        await using var receiver = await OtlpReceiver.StartAsync();
        using var dir = new TempDir("otlp");
        using var server = await StitchCli.ServeAsync(Path.Combine(dir.Path, "store"), new Dictionary<string, string>
        {
            ["Stitching__ModelsRoot"] = TinyModels.ModelsRoot,
            // The standard OpenTelemetry variables, as deploy/k8s sets them (with short export intervals).
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.Address,
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
            ["OTEL_METRIC_EXPORT_INTERVAL"] = "500",
        });
        var request = new Stitching.Contracts.Activations.V1.ExtractRequest
        {
            Corpus = new Stitching.Contracts.Activations.V1.CorpusSpec { Texts = new Stitching.Contracts.Activations.V1.InlineTexts { Texts = { TinyModels.Documents() } } },
            Tokens = new Stitching.Contracts.Activations.V1.TokenSetSpec { ContextLength = 16, MaxTokens = 20 * 16 },
            Models = { new Stitching.Contracts.Activations.V1.ModelHooks { Model = new Stitching.Contracts.Activations.V1.ModelSpec { Model = "tiny-a" }, Hooks = { "blocks.1.hook_resid_pre" } } },
        };
        var op = await new Stitching.Contracts.Activations.V1.ActivationsService.ActivationsServiceClient(server.Channel).ExtractAsync(request);
        await OperationWaiter.SucceededAsync(server.Channel, op.Id, TimeSpan.FromMinutes(2));

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && !(receiver.Received.Spans.Any(s => s.Span.Name == "operation activations.extract") && receiver.Received.MetricNames.Contains("stitching.tokens_per_second")))
            await Task.Delay(200);
        var spans = receiver.Received.Spans.ToArray();
        foreach (var (service, span) in spans) output.WriteLine($"{service}: {span.Name} (kind {span.Kind})");
        var extract = spans.Select(s => s.Span).FirstOrDefault(s => s.Name == "activations.extract");
        Assert.True(extract is not null, "the collector got no activations.extract span");
        Assert.All(spans, s => Assert.Equal("stitching-all-in-one", s.Service));
        Assert.Equal("tiny-a", extract.Attributes.Single(a => a.Key == StitchingTelemetry.ModelAttribute).Value.StringValue);
        Assert.True(extract.Attributes.Single(a => a.Key == StitchingTelemetry.TokensAttribute).Value.IntValue > 0);
        // The operation span is the extract span's parent, and the Extract RPC's server span is the operation's.
        var operation = spans.Select(s => s.Span).Single(s => s.SpanId == extract.ParentSpanId);
        Assert.Equal("operation activations.extract", operation.Name);
        var rpc = spans.Select(s => s.Span).Single(s => s.SpanId == operation.ParentSpanId);
        Assert.Equal(2, rpc.Kind); // SPAN_KIND_SERVER
        Assert.Contains("stitching.tokens_per_second", receiver.Received.MetricNames);
        Assert.Contains("stitching.flops", receiver.Received.MetricNames);
    }

    private static string? Tag(MetricPoint p, string key)
    {
        foreach (var t in p.Tags) if (t.Key == key) return t.Value as string;
        return null;
    }

    private static string Describe(Activity s)
    {
        var rpc = s.GetTagItem("rpc.service") is string service ? $" {service}/{s.GetTagItem("rpc.method")}" : "";
        return $"{s.DisplayName}{rpc}";
    }

    private static IEnumerable<string> Tree(List<Activity> spans)
    {
        var children = spans.ToLookup(s => s.ParentSpanId);
        var ids = spans.Select(s => s.SpanId).ToHashSet();
        IEnumerable<string> Walk(Activity s, int depth)
        {
            yield return $"{new string(' ', depth * 2)}{Describe(s)} [{s.Kind}, {s.Source.Name}]";
            foreach (var c in children[s.SpanId].OrderBy(c => c.StartTimeUtc))
                foreach (var line in Walk(c, depth + 1)) yield return line;
        }
        foreach (var root in spans.Where(s => !ids.Contains(s.ParentSpanId)).OrderBy(s => s.StartTimeUtc))
            foreach (var line in Walk(root, 0)) yield return line;
    }
}
