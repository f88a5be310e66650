using System.Text.Json.Nodes;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using Stitching.Sae.Interop;
using Stitching.Tests.Fixtures;
using static TorchSharp.torch;

namespace Stitching.Tests.Sae;

/// <summary>SAELens export/import and sparsify import, checked against files and formulas outside our code.</summary>
[Trait("Category", "Unit")]
public class SaeInteropTests
{
    [Theory]
    [InlineData("topk", true)]
    [InlineData("jumprelu", false)]
    [InlineData("batchtopk", false)]
    [InlineData("standard", true)]
    public void SaeLens_export_then_import_is_lossless(string architecture, bool applyBDec)
    {
        using var dir = new TempDir("sae-lens");
        using var sae = SaeFixtures.RandomSae(architecture, 8, 24, 3, applyBDec, seed: 2);
        SaeLensFormat.WriteFolder(dir.Path, sae);
        using var back = SaeLensFormat.ReadFolder(dir.Path);
        Assert.Equal(sae.Config with { K = sae.Architecture.UsesK ? 3 : 0 }, back.Config);
        foreach (var ((name, a), (name2, b)) in sae.Named().Zip(back.Named()))
        {
            Assert.Equal(name, name2);
            Assert.Equal(SaeFixtures.Floats(a), SaeFixtures.Floats(b));
        }
        var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, "cfg.json")))!;
        Assert.Equal(architecture, cfg["architecture"]!.GetValue<string>());
        Assert.Equal("model-a", cfg["metadata"]!["model_name"]!.GetValue<string>());
        // numpy reads the weights with the SAELens names and shapes.
        var shapes = Python.Run("""
            import sys, json, struct
            b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8+n])
            print(' '.join(f"{k}:{'x'.join(map(str, v['shape']))}" for k, v in sorted(h.items()) if k != '__metadata__'))
            """, Path.Combine(dir.Path, "sae_weights.safetensors")).Trim();
        Assert.Contains("W_enc:8x24", shapes);
        Assert.Contains("W_dec:24x8", shapes);
        Assert.Equal(architecture is "jumprelu" or "batchtopk", shapes.Contains("threshold:24"));
    }

    [Fact]
    public void Older_flat_SaeLens_cfg_layout_imports()
    {
        using var dir = new TempDir("sae-lens-flat");
        using var sae = SaeFixtures.RandomSae("topk", 8, 24, 3, true, seed: 4);
        SaeLensFormat.WriteFolder(dir.Path, sae);
        File.WriteAllText(Path.Combine(dir.Path, "cfg.json"), """
            {"model_name": "gpt2", "hook_point": "blocks.6.hook_resid_pre", "hook_point_layer": 6, "d_in": 8, "d_sae": 24,
             "activation_fn_str": "topk", "activation_fn_kwargs": {"k": 3}, "apply_b_dec_to_input": true, "dtype": "float32"}
            """);
        using var back = SaeLensFormat.ReadFolder(dir.Path);
        Assert.Equal(("topk", 3, "gpt2", "blocks.6.hook_resid_pre", true), (back.Config.Architecture, back.Config.K, back.Config.Model, back.Config.Hook, back.Config.ApplyBDecToInput));
    }

    [Fact]
    public void A_sparsify_checkpoint_made_by_numpy_imports_and_encodes_as_sparsify_does()
    {
        using var dir = new TempDir("sparsify");
        // numpy writes the sparsify layout (cfg.json + sae.safetensors) and the latents sparsify's formula gives.
        var reference = Python.Run("""
            import sys, json, struct, numpy as np
            d, m, k = 6, 20, 3
            rng = np.random.default_rng(0)
            t = {'encoder.weight': rng.normal(size=(m, d)).astype(np.float32), 'encoder.bias': rng.normal(size=m).astype(np.float32) * 0.1,
                 'W_dec': rng.normal(size=(m, d)).astype(np.float32), 'b_dec': rng.normal(size=d).astype(np.float32)}
            header, off, blobs = {}, 0, []
            for name, a in t.items():
                header[name] = {'dtype': 'F32', 'shape': list(a.shape), 'data_offsets': [off, off + a.nbytes]}; off += a.nbytes; blobs.append(a.tobytes())
            h = json.dumps(header).encode()
            open(sys.argv[1] + '/sae.safetensors', 'wb').write(struct.pack('<Q', len(h)) + h + b''.join(blobs))
            json.dump({'expansion_factor': 4, 'normalize_decoder': True, 'num_latents': m, 'k': k, 'multi_topk': False, 'skip_connection': False}, open(sys.argv[1] + '/cfg.json', 'w'))
            x = rng.normal(size=(5, d)).astype(np.float32)
            pre = np.maximum((x - t['b_dec']) @ t['encoder.weight'].T + t['encoder.bias'], 0)
            f = np.zeros_like(pre)
            idx = np.argsort(-pre, axis=1)[:, :k]
            np.put_along_axis(f, idx, np.take_along_axis(pre, idx, axis=1), axis=1)
            print(' '.join(map(repr, x.ravel().tolist())))
            print(' '.join(map(repr, f.ravel().tolist())))
            """, dir.Path).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var x = tensor(reference[0].Split(' ').Select(float.Parse).ToArray(), [5, 6]);
        var expected = tensor(reference[1].Split(' ').Select(float.Parse).ToArray(), [5, 20]);

        using var sae = SparsifyFormat.ReadFolder(dir.Path, "pythia", "layers.3");
        Assert.Equal(("topk", 6, 20, 3, true), (sae.Config.Architecture, sae.Config.DIn, sae.Config.DSae, sae.Config.K, sae.Config.ApplyBDecToInput));
        Assert.True(SaeFixtures.MaxAbsDiff(sae.Encode(x), expected) < 1e-5);
    }
}
