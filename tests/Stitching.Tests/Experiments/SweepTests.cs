using System.Diagnostics;
using System.Text.Json.Nodes;
using Grpc.Core;
using k8s;
using k8s.Models;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Eval.V1;
using Stitching.Core.Errors;
using Stitching.Eval.Experiments;
using Stitching.Tests.Fixtures;
using Xunit.Abstractions;

namespace Stitching.Tests.Experiments;

/// <summary>Sweep expansion, the Kubernetes manifests (the rendered Indexed Job and kustomize's output as Kubernetes objects), and a sweep run locally, interrupted, resumed and collected.</summary>
public class SweepTests(ITestOutputHelper output)
{
    private const string Base = "experiment:\n  model_a: {model: a}\n  model_b: {model: b}\n  sae: {k: 4}\n";

    [Fact]
    public void Axes_expand_to_a_named_cartesian_product_and_points_to_an_explicit_list()
    {
        var sweep = Sweeps.Parse(Base + "sweep:\n  name: s\n  parallelism: 3\n  axes:\n    sae.k: [8, 16]\n    sae.width_multiples: [[2], [4]]\n", "file");
        Assert.Equal(("s", 3), (sweep.Name, sweep.Parallelism));
        Assert.Equal(["sae.k=8,sae.width_multiples=2", "sae.k=8,sae.width_multiples=4", "sae.k=16,sae.width_multiples=2", "sae.k=16,sae.width_multiples=4"], sweep.Points.Select(p => p.Name));
        Assert.Equal([8, 8, 16, 16], sweep.Points.Select(p => p.Spec.Sae.K));
        Assert.Equal([2, 4, 2, 4], sweep.Points.Select(p => p.Spec.Sae.WidthMultiples.Single()));
        Assert.Equal([0, 1, 2, 3], sweep.Points.Select(p => p.Index));
        Assert.All(sweep.Points, p => Assert.Equal("a", p.Spec.ModelA.Model));
        Assert.Equal(4, sweep.Points.Select(p => ExperimentSpecs.Hash(ExperimentSpecs.Normalize(p.Spec))).Distinct().Count());

        var listed = Sweeps.Parse(Base + "sweep:\n  points:\n    - {name: small, set: {sae.k: 2}}\n    - {name: same, set: {}}\n    - {name: b, set: {model_b.model: c, layers.layer_b: 1}}\n", "file");
        Assert.Equal(["small", "same", "b"], listed.Points.Select(p => p.Name));
        Assert.Equal([2, 4, 4], listed.Points.Select(p => p.Spec.Sae.K));
        Assert.Equal("c", listed.Points[2].Spec.ModelB.Model);
        Assert.True(listed.Points[2].Spec.Layers.LayerB is not null);
        Assert.Equal("file/same", listed.Points[1].Spec.Name);

        var single = Sweeps.Parse("model_a: {model: a}\nmodel_b: {model: b}\n", "one");
        Assert.Single(single.Points);
    }

    [Theory]
    [InlineData("sweep:\n  axes: {sae.k: [1]}\n", "experiment")]
    [InlineData(Base + "sweep:\n  axes: {sae.k: []}\n", "sweep.axes.sae.k")]
    [InlineData(Base + "sweep:\n  axes: {sae.k: [-3]}\n", "spec.sae.k")]
    [InlineData(Base + "sweep:\n  axis: {sae.k: [1]}\n", "sweep.axis")]
    [InlineData(Base + "sweep:\n  points: [{name: x}, {name: x}]\n", "sweep.points")]
    [InlineData(Base + "sweep:\n  parallelism: 0\n  axes: {sae.k: [1]}\n", "sweep.parallelism")]
    public void Invalid_sweeps_name_the_field(string text, string field)
    {
        var e = Assert.Throws<StitchingException>(() => Sweeps.Parse(text, "f"));
        Assert.Equal(field, e.Field);
    }

    private static async Task<string> RenderAsync(string file) =>
        string.Join("\n", await Cli(["sweep", "render", file, "--image", "stitching/cli:latest"])) + "\n";

    [Fact]
    public async Task The_rendered_indexed_job_is_valid_kubernetes_and_its_pods_reach_the_eval_service_of_deploy_k8s()
    {
        var file = Path.Combine(Python.RepoRoot(), "examples", "sweep-ci.yaml");
        var yaml = await RenderAsync(file);
        // deploy/k8s/sweep holds this very rendering as the template; it must not drift from the code.
        Assert.Equal(File.ReadAllText(Path.Combine(Python.RepoRoot(), "deploy", "k8s", "sweep", "sweep-ci.yaml")), yaml);
        var objects = KubernetesYaml.LoadAllFromString(yaml);
        var configMap = Assert.IsType<V1ConfigMap>(objects[0]);
        var job = Assert.IsType<V1Job>(objects[1]);
        Assert.Equal(File.ReadAllText(file), configMap.Data["sweep.yaml"]);
        Assert.Equal("Indexed", job.Spec.CompletionMode);
        Assert.Equal(4, job.Spec.Completions);
        Assert.Equal(2, job.Spec.Parallelism);
        Assert.NotNull(job.Spec.BackoffLimitPerIndex);
        var pod = job.Spec.Template.Spec;
        Assert.Equal("Never", pod.RestartPolicy);
        Assert.Equal(configMap.Metadata.Name, pod.Volumes.Single().ConfigMap.Name);
        var args = pod.Containers.Single().Args;
        Assert.Equal(["sweep", "point", "/sweep/sweep.yaml"], args.Take(3));
        var server = new Uri(args[args.IndexOf("--server") + 1]);

        // The cluster the pods run in: kustomize's rendering of the base and of each overlay, as Kubernetes objects.
        foreach (var overlay in new[] { "base", "overlays/local", "overlays/gpu" })
        {
            var rendered = Kubectl("kustomize", Path.Combine(Python.RepoRoot(), "deploy", "k8s", overlay));
            var cluster = KubernetesYaml.LoadAllFromString(rendered);
            Assert.NotEmpty(cluster);
            var eval = cluster.OfType<V1Service>().Single(s => s.Metadata.Name == server.Host);
            Assert.Contains(eval.Spec.Ports, p => p.Port == server.Port);
            var deployment = cluster.OfType<V1Deployment>().Single(d => d.Metadata.Name == server.Host);
            Assert.Contains(deployment.Spec.Template.Spec.Containers.Single().Ports, p => p.ContainerPort == server.Port);
            // The experiment calls the other services by the addresses the shared environment gives.
            var env = cluster.OfType<V1ConfigMap>().Single(c => c.Metadata.Name.StartsWith("stitching-env", StringComparison.Ordinal)).Data;
            foreach (var (key, service) in new[] { ("Stitching__ActivationsAddress", "activations"), ("Stitching__StitchAddress", "stitch"), ("Stitching__SaeAddress", "sae"), ("Stitching__EvalAddress", "eval") })
            {
                var address = new Uri(env[key]);
                Assert.Equal(service, address.Host);
                Assert.Contains(cluster.OfType<V1Service>().Single(s => s.Metadata.Name == service).Spec.Ports, p => p.Port == address.Port);
            }
        }
    }

    [Fact]
    public void The_sliced_extraction_job_template_is_a_valid_indexed_job_with_one_slice_per_completion()
    {
        var job = Assert.IsType<V1Job>(KubernetesYaml.LoadAllFromString(File.ReadAllText(Path.Combine(Python.RepoRoot(), "deploy", "k8s", "sweep", "extract-job.yaml"))).Single());
        Assert.Equal("Indexed", job.Spec.CompletionMode);
        var args = job.Spec.Template.Spec.Containers.Single().Args;
        Assert.Equal("extract", args[0]);
        Assert.Equal(job.Spec.Completions, int.Parse(args[args.IndexOf("--slices") + 1]));
        Assert.DoesNotContain("--slice-index", args); // each pod takes JOB_COMPLETION_INDEX
        Assert.Equal("activations", new Uri(args[args.IndexOf("--server") + 1]).Host);
    }

    /// <summary>kubectl (Google Cloud SDK's or Debian's); these machines have it at /usr/bin/kubectl.</summary>
    private static string Kubectl(params string[] args)
    {
        var exe = new[] { "/usr/bin/kubectl", "/usr/local/bin/kubectl" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("kubectl is needed to render deploy/k8s (kubectl kustomize); install it (Debian: apt-get install -y kubernetes-client).");
        return Python.RunProgram(exe, args);
    }

    [Fact]
    [Trait("Category", "Integration")]
    public async Task A_sweep_of_the_ci_family_runs_locally_is_interrupted_resumes_without_redoing_finished_points_and_collects_one_report()
    {
        // The shipped example, as a user runs it: the ci zoo family (brown-ci-s -> brown-ci-l), TopK k x width, 4 points, parallelism 2.
        using var dir = new TempDir("sweep");
        var file = Path.Combine(Python.RepoRoot(), "examples", "sweep-ci.yaml");
        var sweep = Sweeps.Parse(File.ReadAllText(file), "sweep-ci");
        Assert.Equal(4, sweep.Points.Count);
        var store = Path.Combine(dir.Path, "store");
        var built = await Cli(["zoo", "build", "--family", "ci", "--store", store]);
        output.WriteLine(string.Join("\n", built));
        using var server = await StitchCli.ServeAsync(store);
        var artifacts = new ArtifactsService.ArtifactsServiceClient(server.Channel);
        async Task<ArtifactManifest?> ReportOf(SweepPoint p)
        {
            try { return await artifacts.GetArtifactAsync(new GetArtifactRequest { Ref = ExperimentSpecs.ReportRef(ExperimentSpecs.Hash(ExperimentSpecs.Normalize(p.Spec))) }); }
            catch (RpcException e) when (e.StatusCode == StatusCode.NotFound) { return null; }
        }

        // First run: killed as soon as one point has finished.
        var first = await Cli(["sweep", "run", file, "--server", server.Address], stopAfter: line => line.Contains(": done"));
        output.WriteLine(string.Join("\n", first));
        var finished = new Dictionary<int, ArtifactManifest>();
        foreach (var p in sweep.Points)
            if (await ReportOf(p) is { } m) finished[p.Index] = m;
        Assert.InRange(finished.Count, 1, 3);

        // Second run: finished points are skipped (their reports untouched); the rest run.
        var second = await Cli(["sweep", "run", file, "--server", server.Address]);
        output.WriteLine(string.Join("\n", second));
        foreach (var (index, manifest) in finished)
        {
            Assert.Contains(second, l => l.StartsWith($"point {index} ", StringComparison.Ordinal) && l.Contains("skipped"));
            Assert.Equal(manifest.CreatedAt, (await ReportOf(sweep.Points[index]))!.CreatedAt);
        }
        Assert.Contains(second, l => l == $"sweep {sweep.Name}: 4 of 4 points finished");

        // Collect: one row per point, each the number of that point's own report.
        var md = Path.Combine(dir.Path, "collected.md");
        await Cli(["sweep", "collect", file, "--server", server.Address, "--out", md]);
        var collected = JsonNode.Parse(File.ReadAllText(Path.ChangeExtension(md, ".json")))!;
        var rows = collected["sweep_rows"]!.AsArray();
        Assert.Equal(sweep.Points.Select(p => p.Name), rows.Select(r => r!["point"]!.GetValue<string>()));
        foreach (var p in sweep.Points)
        {
            using var call = artifacts.ReadFile(new ReadFileRequest { Ref = ExperimentSpecs.ReportRef(ExperimentSpecs.Hash(ExperimentSpecs.Normalize(p.Spec))), File = "report.json" });
            var bytes = new MemoryStream();
            await foreach (var chunk in call.ResponseStream.ReadAllAsync()) chunk.Data.WriteTo(bytes);
            var report = JsonNode.Parse(bytes.ToArray())!;
            var row = rows.Single(r => r!["point"]!.GetValue<string>() == p.Name)!;
            Assert.Equal(report["sae"]![0]!["source_fvu"]!.GetValue<double>(), row["source_fvu"]!.GetValue<double>());
            Assert.Equal(p.Spec.Sae.K, row["k"]!.GetValue<int>());
            // width = multiple x d_model of brown-ci-l, from the family's own spec rather than the report.
            Assert.Equal(p.Spec.Sae.WidthMultiples.Single() * Stitching.Zoo.Family.FamilySpec.Ci.Sizes[^1].Width, row["width"]!.GetValue<int>());
            Assert.Equal(report["sae"]![0]!["width"]!.GetValue<int>(), row["width"]!.GetValue<int>());
        }
        Assert.True(File.Exists(Path.ChangeExtension(md, ".html")));
    }

    /// <summary>Runs the stitch CLI; with <paramref name="stopAfter"/>, kills it (SIGKILL) after the first line that matches.</summary>
    private static async Task<List<string>> Cli(string[] args, Func<string, bool>? stopAfter = null)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { StitchCli.Dll() }.Concat(args)) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var lines = new List<string>();
        var stderr = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(8));
        while (await p.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            lines.Add(line);
            if (stopAfter?.Invoke(line) == true) { p.Kill(entireProcessTree: true); break; }
        }
        await p.WaitForExitAsync(timeout.Token);
        if (stopAfter is null && p.ExitCode != 0) throw new InvalidOperationException($"stitch {string.Join(' ', args)} failed ({p.ExitCode}): {await stderr}\n{string.Join("\n", lines)}");
        return lines;
    }
}
