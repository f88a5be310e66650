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
}
