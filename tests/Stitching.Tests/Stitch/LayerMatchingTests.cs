using Stitching.Core.Metrics;
using Stitching.Stitch.Matching;
using static TorchSharp.torch;

namespace Stitching.Tests.Stitch;

/// <summary>Layer matching that a lookup layer cannot fool: held-out SVCCA on halves split by token id.</summary>
[Trait("Category", "Unit")]
public class LayerMatchingTests
{
    /// <summary>Zipf(1) token ids over a vocabulary, drawn with a seeded generator.</summary>
    private static long[] ZipfTokens(int n, int vocab, int seed)
    {
        var weights = Enumerable.Range(1, vocab).Select(r => 1.0 / r).ToArray();
        var cumulative = new double[vocab];
        double sum = 0;
        for (var i = 0; i < vocab; i++) cumulative[i] = sum += weights[i];
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (long)Math.Min(vocab - 1, Array.BinarySearch(cumulative, rng.NextDouble() * sum) is var j && j < 0 ? ~j : j)).ToArray();
    }

    private static (long[] Fit, long[] Held) Halves(long[] tokens)
    {
        var idx = Enumerable.Range(0, tokens.Length).ToArray();
        return (idx.Where(i => LayerMatcher.InFittingHalf((int)tokens[i])).Select(i => (long)i).ToArray(),
                idx.Where(i => !LayerMatcher.InFittingHalf((int)tokens[i])).Select(i => (long)i).ToArray());
    }

    [Fact]
    public void Held_out_svcca_of_independent_lookup_embeddings_is_near_zero_while_in_sample_is_not()
    {
        using var scope = NewDisposeScope();
        const int n = 16384, vocab = 4096, d = 64;
        var tokens = ZipfTokens(n, vocab, seed: 1);
        var g = new Generator(2);
        var ids = tensor(tokens);
        var x = randn(vocab, d, generator: g).index_select(0, ids); // model A's lookup table
        var y = randn(vocab, d, generator: g).index_select(0, ids); // model B's, independent
        var (fit, held) = Halves(tokens);
        Assert.True(fit.Length > n / 4 && held.Length > n / 4, "both halves hold a good share of the tokens");
        var (fi, hi) = (tensor(fit), tensor(held));
        var inSample = RepresentationSimilarity.Svcca(x, y);
        var heldOut = RepresentationSimilarity.HeldOutSvcca(x.index_select(0, fi), y.index_select(0, fi), x.index_select(0, hi), y.index_select(0, hi));
        Assert.True(inSample > 0.3, $"in-sample SVCCA {inSample:F3}: the bias this test is about should be visible");
        Assert.True(Math.Abs(heldOut) < 0.05, $"held-out SVCCA {heldOut:F3}");
    }

    [Fact]
    public void Held_out_svcca_of_an_affine_image_stays_near_one()
    {
        using var scope = NewDisposeScope();
        var tokens = ZipfTokens(8000, 2048, seed: 3);
        var g = new Generator(4);
        var x = randn(8000, 24, generator: g);
        var y = x.matmul(randn(24, 40, generator: g)) + 3 + randn(8000, 40, generator: g) * 0.01;
        var (fit, held) = Halves(tokens);
        var (fi, hi) = (tensor(fit), tensor(held));
        var heldOut = RepresentationSimilarity.HeldOutSvcca(x.index_select(0, fi), y.index_select(0, fi), x.index_select(0, hi), y.index_select(0, hi));
        Assert.True(heldOut > 0.95, $"held-out SVCCA {heldOut:F3}");
    }
}

/// <summary>MatchLayers over gRPC on hand-made paired activation sets with a known answer.</summary>
[Trait("Category", "Integration")]
public class PlantedLayerMatchTests
{
    /// <summary>A paired "activation-set" in the activations-service layout: one tensor per hook, token_ids, special.</summary>
    private static Stitching.Contracts.Common.V1.ArtifactRef Write(Stitching.Core.Artifacts.ArtifactStore store, string id, long[] tokens, Dictionary<string, Tensor> hooks)
    {
        var r = new Stitching.Contracts.Common.V1.ArtifactRef { Kind = Stitching.Core.Activations.ActivationSetLayout.Kind, Id = id };
        using var writer = store.Create(r);
        var set = new Stitching.Core.Activations.ActivationSetWriter(writer);
        const int shardRows = 4096;
        var d = (int)hooks.Values.First().shape[1];
        for (var start = 0; start < tokens.Length; start += shardRows)
        {
            var count = Math.Min(shardRows, tokens.Length - start);
            var tensors = hooks.Select(h => Stitching.Core.Tensors.TorchTensors.ToHost(h.Value[start..(start + count)].contiguous(), h.Key)).ToList();
            var ids = tokens.Skip(start).Take(count).Select(t => (int)t).ToArray();
            var special = new byte[count];
            special[0] = 1;
            tensors.Add(new Stitching.Core.Tensors.HostTensor("token_ids", Stitching.Core.Tensors.DType.I32, [count], System.Runtime.InteropServices.MemoryMarshal.AsBytes(ids.AsSpan()).ToArray()));
            tensors.Add(new Stitching.Core.Tensors.HostTensor("special", Stitching.Core.Tensors.DType.U8, [count], special));
            set.WriteShard(tensors);
        }
        set.Describe(new Stitching.Core.Activations.ActivationSetInfo(id, "planted", "", "", "float32", hooks.Keys.ToList(), "planted-tokens", 1, d, 0, tokens.Length));
        writer.Commit();
        return r;
    }

    [Fact]
    public async Task A_deep_planted_match_wins_over_a_lookup_layer_on_both_held_out_rules()
    {
        await using var server = await Fixtures.TestServer.StartAsync(redis: false);
        var store = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<Stitching.Core.Artifacts.ArtifactStore>(server.Server.Services);
        const int n = 20000, vocab = 3000, dA = 24, dB = 32;
        var rng = new Random(5);
        var weights = Enumerable.Range(1, vocab).Select(r => 1.0 / r).ToArray();
        var total = weights.Sum();
        var tokens = Enumerable.Range(0, n).Select(_ =>
        {
            var u = rng.NextDouble() * total;
            var i = 0;
            while (i < vocab - 1 && (u -= weights[i]) > 0) i++;
            return (long)i;
        }).ToArray();
        using var scope = NewDisposeScope();
        var g = new Generator(6);
        var ids = tensor(tokens);
        var embedA = randn(vocab, dA, generator: g).index_select(0, ids);
        // A's layer 1: its lookup plus a context signal (the previous tokens' embeddings) and a token-free latent state.
        var previous = randn(vocab, dA, generator: g).index_select(0, ids.roll(1, 0));
        var state = randn(n, dA, generator: g);
        var a1 = embedA * 0.5 + previous + state;
        // B: an independent lookup (blocks.0), a layer of pure noise, and a deep layer that is an affine image of A's layer 1.
        var b0 = randn(vocab, dB, generator: g).index_select(0, ids);
        var bNoise = randn(n, dB, generator: g);
        var b2 = a1.matmul(randn(dA, dB, generator: g)) + 1 + randn(n, dB, generator: g) * 0.3;
        var setA = Write(store, "planted-a", tokens, new() { ["blocks.0.hook_resid_pre"] = embedA, ["blocks.1.hook_resid_pre"] = a1 });
        var setB = Write(store, "planted-b", tokens, new() { ["blocks.0.hook_resid_pre"] = b0, ["blocks.1.hook_resid_pre"] = bNoise, ["blocks.2.hook_resid_pre"] = b2 });
        var client = new Stitching.Contracts.Stitch.V1.StitchService.StitchServiceClient(server.Channel);
        foreach (var rule in new[] { "heldout_svcca", "heldout_fvu" })
        {
            var m = await client.MatchLayersAsync(new Stitching.Contracts.Stitch.V1.MatchLayersRequest
            {
                ActivationSetA = setA, ActivationSetB = setB, HooksA = { "blocks.1.hook_resid_pre" }, IncludeEmbeddings = true, Rule = rule,
            });
            Assert.Equal(["blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre", "blocks.2.hook_resid_pre"], m.HooksB);
            Assert.True(m.BestB[0] == 2, $"{rule} chose {m.HooksB[m.BestB[0]]}: held-out SVCCA [{string.Join(", ", m.HeldoutSvcca.Select(v => v.ToString("F3")))}], FVU up [{string.Join(", ", m.FvuUp.Select(v => v.ToString("F3")))}]");
            Assert.True(m.Tokens >= 16384 * 0.95, $"sampled {m.Tokens} tokens");
        }
    }
}
