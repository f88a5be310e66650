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
}
