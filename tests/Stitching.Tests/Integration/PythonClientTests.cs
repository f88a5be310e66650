using Microsoft.Extensions.DependencyInjection;
using Stitching.Client;
using System.Text.RegularExpressions;
using Stitching.Core.Tensors;
using Stitching.Contracts.Common.V1;
using Stitching.Tests.Fixtures;
using DType = Stitching.Core.Tensors.DType;

namespace Stitching.Tests.Integration;

/// <summary>The Python client (stubs generated from protos/ by Debian's grpc_tools) against a real server.</summary>
[Trait("Category", "Integration")]
public class PythonClientTests
{
    [Fact]
    public async Task Python_client_round_trips_tensors_that_the_server_really_stored()
    {
        await using var server = await TestServer.StartAsync();
        var root = Python.RepoRoot();
        Python.RunProgram("/bin/bash", Path.Combine(root, "clients", "python", "generate.sh"));
        var address = new Uri(server.Server.Address);
        var output = Python.RunProgram(Python.Exe, Path.Combine(root, "clients", "python", "examples", "roundtrip.py"), $"{address.Host}:{address.Port}");
        Assert.EndsWith("ok", output.Trim());
        Assert.Contains("health SERVING", output);

        // Independent of Python's own check: what landed in the store, read by the C# client.
        var id = Regex.Match(output, @"uploaded tensors/(\S+):").Groups[1].Value;
        var stored = await TensorTransfer.ReadAsync(new ArtifactsService.ArtifactsServiceClient(server.Channel), new ArtifactRef { Kind = "tensors", Id = id });
        var byName = stored.ToDictionary(t => t.Name);
        Assert.Equal(8, byName.Count);
        Assert.Equal(DType.F32, byName["big_f32"].DType);
        Assert.Equal([1024L, 777L], byName["big_f32"].Shape);
        Assert.Equal(DType.BF16, byName["bf16"].DType);
        Assert.Equal(DType.I64, byName["i64"].DType);
        Assert.Empty(byName["scalar"].Shape);
        Assert.Equal(42f, byName["scalar"].ToFloats().Single());
    }

    [Fact]
    public async Task Python_client_tokenizes_steers_and_extracts()
    {
        await using var server = await TestServer.StartAsync(redis: false, testJobs: false, modelsRoot: TinyModels.ModelsRoot);
        var root = Python.RepoRoot();
        Python.RunProgram("/bin/bash", Path.Combine(root, "clients", "python", "generate.sh"));
        var address = new Uri(server.Server.Address);
        var output = Python.RunProgram(Python.Exe, Path.Combine(root, "clients", "python", "examples", "activations.py"),
            $"{address.Host}:{address.Port}", "tiny-a", "blocks.1.hook_resid_pre");
        Assert.EndsWith("ok", output.Trim());

        // what Python saw is what the store holds
        var id = Regex.Match(output, @"into (as-\S+) ").Groups[1].Value;
        var manifest = await new ArtifactsService.ArtifactsServiceClient(server.Channel).GetArtifactAsync(new GetArtifactRequest { Ref = new ArtifactRef { Kind = "activation-set", Id = id } });
        Assert.Equal("blocks.1.hook_resid_pre", manifest.Metadata["hooks"]);
        Assert.Contains($"extracted {manifest.Metrics["tokens"]} tokens", output);
    }

    /// <summary>The Python client's token= against a server that requires tokens, and its SAE evaluation helper.</summary>
    [Fact]
    public async Task Python_client_sends_its_token_and_evaluates_an_sae()
    {
        await using var server = await TestServer.StartAsync(redis: false, testJobs: false, modelsRoot: TinyModels.ModelsRoot,
            settings: new Dictionary<string, string> { ["Stitching:Auth:Tokens:0"] = "py-secret" });
        var store = server.Server.Services.GetRequiredService<Stitching.Core.Artifacts.ArtifactStore>();
        using (var sae = Sae.SaeFixtures.RandomSae("topk", 32, 64, 4, true, 9))
            Stitching.Sae.Storage.SaeArtifacts.Save(store, new ArtifactRef { Kind = "sae", Id = "py-sae" }, sae);
        var root = Python.RepoRoot();
        Python.RunProgram("/bin/bash", Path.Combine(root, "clients", "python", "generate.sh"));
        var address = new Uri(server.Server.Address);
        const string script = """
import sys, grpc
sys.path.insert(0, sys.argv[2])
import numpy as np
from stitching import Client
try:
    Client(sys.argv[1], token="").artifacts()
    print("anonymous allowed")
except grpc.RpcError as e:
    print("anonymous", e.code().name)
with Client(sys.argv[1], token="py-secret") as c:
    ids = (np.arange(3 * 8).reshape(3, 8) * 7 + 1) % 300 + 1
    r = c.evaluate_sae("tiny-a", "py-sae", ids, hook="blocks.1.hook_resid_pre")
    print("l0", r.l0, "tokens", r.tokens, "ce", r.ce_clean)
""";
        var output = Python.Run(script, $"{address.Host}:{address.Port}", Path.Combine(root, "clients", "python"));
        Assert.Contains("anonymous UNAUTHENTICATED", output);
        Assert.Contains("tokens 24", output);
        Assert.Matches(@"l0 [0-4](\.\d+)? ", output);
    }

    [Fact]
    public async Task Python_client_plans_and_runs_an_experiment_and_reads_its_report()
    {
        await using var server = await TestServer.StartAsync(redis: false, testJobs: false, modelsRoot: TinyModels.ModelsRoot);
        var root = Python.RepoRoot();
        Python.RunProgram("/bin/bash", Path.Combine(root, "clients", "python", "generate.sh"));
        using var dir = new TempDir("py-experiment");
        var spec = Stitching.Tests.Experiments.ExperimentRunTests.TinySpec();
        spec.Evaluations.Clear();
        spec.Evaluations.Add("splice");
        var file = Path.Combine(dir.Path, "spec.json");
        File.WriteAllText(file, Google.Protobuf.JsonFormatter.Default.Format(spec));
        var address = new Uri(server.Server.Address);
        var output = Python.RunProgram(Python.Exe, Path.Combine(root, "clients", "python", "examples", "experiment.py"), $"{address.Host}:{address.Port}", file);
        Assert.EndsWith("ok", output.Trim());

        // What Python printed is what the server's own record and report say.
        var id = Regex.Match(output, @"experiment (op-\S+):").Groups[1].Value;
        var op = await new OperationsService.OperationsServiceClient(server.Channel).GetOperationAsync(new GetOperationRequest { Id = id });
        var result = op.Result.Unpack<Stitching.Contracts.Eval.V1.ExperimentResult>();
        Assert.Contains($"{result.Stages.Count} stages, report {result.Report.Id}", output);
        Assert.Equal(result.Ledger.TotalFlops, double.Parse(Regex.Match(output, @"ledger (\S+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        var store = server.Server.Services.GetRequiredService<Stitching.Core.Artifacts.ArtifactStore>();
        var report = System.Text.Json.Nodes.JsonNode.Parse(store.ReadAllBytes(result.Report, "report.json"))!;
        var fvu = report["sae"]![0]!["source_fvu"]!.GetValue<double>();
        var printed = double.Parse(Regex.Match(output, @"source_fvu (\S+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(fvu, printed);
    }
}
