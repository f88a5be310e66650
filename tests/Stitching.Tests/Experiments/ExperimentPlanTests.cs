using Grpc.Core;
using Stitching.Contracts.Eval.V1;
using Stitching.Eval.Experiments;
using Stitching.Tests.Fixtures;

namespace Stitching.Tests.Experiments;

/// <summary>
/// The dry run over gRPC: the paper's example specs validate, say which models are missing from this machine's
/// cache, resolve their fixed layers and estimate the activation caches exactly as the formula of docs/experiments.md
/// gives them (recomputed here from the published shapes); a spec on present models resolves them from the store.
/// </summary>
[Trait("Category", "Integration")]
public class ExperimentPlanTests
{
    public static TheoryData<string, string, string, int, int> Examples => new()
    {
        { "pythia.yaml", "EleutherAI/pythia-70m-deduped", "EleutherAI/pythia-160m-deduped", 3, 4 },
        { "gpt2.yaml", "openai-community/gpt2", "openai-community/gpt2-medium", 6, 10 },
        { "gemma2.yaml", "google/gemma-2-2b", "google/gemma-2-9b", 20, 33 },
    };

    [Theory]
    [MemberData(nameof(Examples))]
    public async Task The_paper_examples_validate_and_plan_naming_the_missing_models(string file, string a, string b, int layerA, int layerB)
    {
        await using var server = await TestServer.StartAsync(redis: false, testJobs: false, modelsRoot: TinyModels.ModelsRoot);
        var spec = ExperimentSpecs.Parse(File.ReadAllText(Path.Combine(Python.RepoRoot(), "examples", file)));
        var plan = await new ExperimentsService.ExperimentsServiceClient(server.Channel).PlanExperimentAsync(new RunExperimentRequest { Spec = spec });
        Assert.Equal((a, b), (plan.Models[0].Model, plan.Models[1].Model));
        Assert.All(plan.Models, m => Assert.Equal("missing", m.Availability));
        Assert.Contains(plan.Problems, p => p.StartsWith("spec.model_a.model", StringComparison.Ordinal) && p.Contains(a));
        Assert.Contains(plan.Problems, p => p.StartsWith("spec.model_b.model", StringComparison.Ordinal) && p.Contains(b));
        Assert.Equal((layerA, layerB), (plan.LayerA, plan.LayerB));
        var (pa, pb) = (ExperimentPlanner.Published[a], ExperimentPlanner.Published[b]);
        Assert.Equal(pa.Width, plan.Models[0].Width);
        var tokens = spec.TrainTokens + (long)spec.TestRows * spec.Context;
        long Cache(int width) => tokens * ((long)width * 4 + ExperimentPlanner.TokenOverheadBytes); // one hook per model: both layers are given
        Assert.Equal(Cache(pa.Width) + Cache(pb.Width), plan.ActivationCacheBytes);
        Assert.Equal(plan.Stages.Sum(s => s.Flops), plan.Flops, 0);
        Assert.DoesNotContain(plan.Stages, s => s.Name == "match");
        foreach (var w in spec.Sae.Widths)
        {
            var sae = plan.Stages.Single(s => s.Name == $"sae.scratch.{w}");
            Assert.Equal(10.0 * spec.Sae.Epochs * spec.TrainTokens * pb.Width * w, sae.Flops, 0); // 10 n d M per token (docs/flops.md)
        }
        Assert.True(plan.PeakMemoryBytes > pb.Parameters * (spec.ModelB.Dtype == "bfloat16" ? 2 : 4));

        // Running it is refused before any job starts, naming the model.
        var e = await Assert.ThrowsAsync<RpcException>(() => new ExperimentsService.ExperimentsServiceClient(server.Channel).RunExperimentAsync(new RunExperimentRequest { Spec = spec }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
        Assert.Contains("spec.model_a.model", e.Status.Detail);
    }

    [Fact]
    public async Task A_spec_on_present_models_resolves_them_and_leaves_B_layer_to_the_rule()
    {
        await using var server = await TestServer.StartAsync(redis: false, testJobs: false, modelsRoot: TinyModels.ModelsRoot);
        var spec = ExperimentRunTests.TinySpec();
        var plan = await new ExperimentsService.ExperimentsServiceClient(server.Channel).PlanExperimentAsync(new RunExperimentRequest { Spec = spec });
        Assert.Empty(plan.Problems);
        Assert.Equal(["store", "store"], plan.Models.Select(m => m.Availability));
        Assert.Equal((32, 48), (plan.Models[0].Width, plan.Models[1].Width));
        Assert.Equal((1, -1), (plan.LayerA, plan.LayerB)); // the middle of A's 2 layers; B's chosen after extraction
        Assert.Contains(plan.Stages, s => s.Name == "match");
        var tokens = spec.TrainTokens + (long)spec.TestRows * spec.Context;
        Assert.Equal(tokens * (2L * 32 * 4 + ExperimentPlanner.TokenOverheadBytes) + tokens * (3L * 48 * 4 + ExperimentPlanner.TokenOverheadBytes), plan.ActivationCacheBytes);
        var bad = spec.Clone();
        bad.Sae.K = -2;
        var e = await Assert.ThrowsAsync<RpcException>(() => new ExperimentsService.ExperimentsServiceClient(server.Channel).PlanExperimentAsync(new RunExperimentRequest { Spec = bad }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("spec.sae.k", e.Status.Detail);
    }
}
