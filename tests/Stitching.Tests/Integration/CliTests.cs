using Stitching.Client;
using Stitching.Core.Safetensors;
using Stitching.Tests.Fixtures;

namespace Stitching.Tests.Integration;

/// <summary>The stitch CLI as a user runs it (its own process, embedded server, real gRPC).</summary>
[Trait("Category", "Integration")]
public class CliTests
{
    private static string Run(params string[] args) => Python.RunProgram("dotnet", [StitchCli.Dll(), .. args]);

    [Fact]
    public void Activations_writes_one_tensor_per_hook_named_as_the_hook_matching_the_reference()
    {
        var checkpoint = HfReference.Checkpoint("llama");
        using var refs = HfReference.Reference(checkpoint);
        var ids = HfReference.Tensor(refs, "ids")[0];
        using var dir = new TempDir("cli");
        var output = Path.Combine(dir.Path, "acts.safetensors");
        var printed = Run("activations", "--model", checkpoint, "--token-ids", string.Join(",", ids.data<long>().ToArray()),
            "--hooks", "blocks.0.hook_resid_pre,blocks.2.hook_resid_pre,ln_final.hook_normalized", "--out", output, "--logits",
            "--store", Path.Combine(dir.Path, "store"));
        Assert.Contains("wrote", printed);
        using var written = SafetensorsReader.Open(output);
        Assert.Equal(["blocks.0.hook_resid_pre", "blocks.2.hook_resid_pre", "ln_final.hook_normalized", "logits"], written.Entries.Select(e => e.Name));
        foreach (var name in new[] { "blocks.2.hook_resid_pre", "ln_final.hook_normalized", "logits" })
        {
            var expected = HfReference.Tensor(refs, name)[0];
            var got = Stitching.Core.Tensors.TorchTensors.ToTorch(written.Read(name));
            Assert.Equal(expected.shape, got.shape);
            var err = HfReference.RelativeError(expected, got);
            Assert.True(err < 1e-4, $"{name}: relative error {err:E2}");
        }
    }

    [Fact]
    public void Bad_hooks_exit_non_zero_with_the_field_named()
    {
        var checkpoint = HfReference.Checkpoint("gpt2");
        using var dir = new TempDir("cli");
        var e = Assert.Throws<InvalidOperationException>(() => Run("activations", "--model", checkpoint, "--token-ids", "1,2",
            "--hooks", "blocks.99.hook_resid_pre", "--out", Path.Combine(dir.Path, "x.safetensors"), "--store", Path.Combine(dir.Path, "store")));
        Assert.Contains("capture[0]", e.Message);
        Assert.False(File.Exists(Path.Combine(dir.Path, "x.safetensors")));
    }

    /// <summary>
    /// Every command group talks to the server --server names (a separate `stitch serve` process over its
    /// own store): what each prints comes from that server (its store, its artifacts), and an unknown id
    /// is that server's NOT_FOUND.
    /// </summary>
    [Fact]
    public async Task Every_command_group_takes_server_and_talks_to_that_server()
    {
        using var dir = new TempDir("cli-server");
        var store = Path.Combine(dir.Path, "served-store");
        using var serve = await StitchCli.ServeAsync(store);
        var server = serve.Address;
        // The served store holds one upload; commands that list artifacts must see it.
        await TensorTransfer.UploadAsync(new Stitching.Contracts.Common.V1.ArtifactsService.ArtifactsServiceClient(serve.Channel),
            new Stitching.Contracts.Common.V1.ArtifactRef { Kind = "tensors", Id = "served-marker" }, [Stitching.Core.Tensors.HostTensor.FromFloats("activations", [1f, 2f, 3f, 4f], 2, 2)]);
        Assert.Contains("SERVING", Run("health", "--server", server));
        Run("ops", "list", "--server", server);
        Run("models", "list", "--server", server);
        string Fails(params string[] args) => Assert.Throws<InvalidOperationException>(() => Run([.. args, "--server", server])).Message;
        Assert.Contains("NotFound", Fails("sae", "describe", "--sae", "missing-sae"));
        Assert.Contains("NotFound", Fails("match", "--a", "missing-a", "--b", "missing-b"));
        Assert.Contains("NotFound", Fails("eval-stitch", "--stitch", "missing", "--model-a", "x", "--model-b", "y", "--layer-a", "0", "--layer-b", "0", "--text-file", "/dev/null"));
        var rng = new Random(3);
        var rows = Enumerable.Range(0, 400 * 4).Select(_ => (float)rng.NextDouble()).ToArray();
        var fileA = Path.Combine(dir.Path, "a.safetensors");
        SafetensorsWriter.Write(fileA, [Stitching.Core.Tensors.HostTensor.FromFloats("activations", rows, 400, 4)]);
        var fitted = Run("fit", "--a", fileA, "--b", fileA, "--server", server);
        Assert.Contains("lstsq", fitted);
        // The embedded default never saw any of it: the fit landed in the served store.
        Assert.True(Directory.Exists(Path.Combine(store, "stitch")));
    }

    [Fact]
    public async Task Token_option_authenticates_against_a_server_that_requires_one()
    {
        using var dir = new TempDir("cli-token");
        using var serve = await StitchCli.ServeAsync(Path.Combine(dir.Path, "store"), new Dictionary<string, string> { ["STITCHING_AUTH_TOKENS"] = "cli-secret" });
        Assert.Contains("SERVING", Run("health", "--server", serve.Address)); // health is open
        var anonymous = Assert.Throws<InvalidOperationException>(() => Run("ops", "list", "--server", serve.Address));
        Assert.Contains("Unauthenticated", anonymous.Message);
        Assert.Contains("Unauthenticated", Assert.Throws<InvalidOperationException>(() => Run("ops", "list", "--server", serve.Address, "--token", "wrong")).Message);
        Run("ops", "list", "--server", serve.Address, "--token", "cli-secret");
    }
}
