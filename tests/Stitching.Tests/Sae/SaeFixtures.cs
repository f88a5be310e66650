using Stitching.Core.Stitches;
using Stitching.Core.Activations;
using Stitching.Contracts.Common.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using Stitching.Sae.Weights;
using Stitching.Sae.Training;
using Stitching.Sae.Data;
using Stitching.Sae.Transfer;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace Stitching.Tests.Sae;

/// <summary>Random SAEs and stitches, planted sparse data, and activation-set artifacts written by code.</summary>
public static class SaeFixtures
{
    public static SaeParameters RandomSae(string architecture, int d, int m, int k, bool applyBDec, int seed)
    {
        var g = new TorchSharp.torch.Generator((ulong)seed);
        var threshold = architecture is "jumprelu" or "batchtopk" ? rand(m, generator: g) * 0.2 : null;
        return new SaeParameters(new SaeConfig(architecture, d, m, k, applyBDec, "model-a", "blocks.1.hook_resid_pre"),
            randn(d, m, generator: g) * 0.3, randn(m, generator: g) * 0.1, randn(m, d, generator: g) * 0.3, randn(d, generator: g) * 0.5, threshold);
    }

    public static AffineStitch RandomStitch(int dA, int dB, int seed)
    {
        var g = new TorchSharp.torch.Generator((ulong)seed);
        return new AffineStitch(randn(dA, dB, generator: g) * 0.3, randn(dB, generator: g) * 0.2, randn(dB, dA, generator: g) * 0.3, randn(dA, generator: g) * 0.2);
    }

    /// <summary>Stores a stitch as a committed "stitch" artifact.</summary>
    public static ArtifactRef SaveStitch(ArtifactStore store, string id, AffineStitch s)
    {
        var r = new ArtifactRef { Kind = "stitch", Id = id };
        using var w = store.Create(r);
        w.WriteFile(StitchFile.FileName, StitchBytes(s));
        w.Commit();
        return r;
    }

    public static byte[] StitchBytes(AffineStitch s) => SafetensorsWriter.ToBytes([
        TorchTensors.ToHost(s.PUp, "P_up"), TorchTensors.ToHost(s.BUp, "b_up"), TorchTensors.ToHost(s.PDown, "P_down"), TorchTensors.ToHost(s.BDown, "b_down")]);

    /// <summary>
    /// x = sum over ~<paramref name="active"/> random planted unit directions of |N(0,1)| + 1 magnitudes, plus an offset:
    /// rows [n, d] and the planted directions [features, d].
    /// </summary>
    public static (float[] Rows, float[,] Directions) Planted(int n, int d, int features, int active, int seed)
    {
        var rng = new Random(seed);
        var dirs = new float[features, d];
        for (var f = 0; f < features; f++)
        {
            double norm = 0;
            var v = new double[d];
            for (var j = 0; j < d; j++) { v[j] = Gaussian(rng); norm += v[j] * v[j]; }
            for (var j = 0; j < d; j++) dirs[f, j] = (float)(v[j] / Math.Sqrt(norm));
        }
        var rows = new float[n * d];
        for (var t = 0; t < n; t++)
        {
            for (var a = 0; a < active; a++)
            {
                var f = rng.Next(features);
                var mag = Math.Abs(Gaussian(rng)) + 1;
                for (var j = 0; j < d; j++) rows[t * d + j] += (float)(mag * dirs[f, j]);
            }
            for (var j = 0; j < d; j++) rows[t * d + j] += 0.5f;
        }
        return (rows, dirs);
    }

    /// <summary>An "activation-set" artifact in the services/activations layout holding the given rows for one hook.</summary>
    public static ArtifactRef WriteActivationSet(ArtifactStore store, string id, string hook, float[] rows, int d, int shardRows, string model = "planted")
    {
        var n = rows.Length / d;
        var r = new ArtifactRef { Kind = ActivationSetLayout.Kind, Id = id };
        using var writer = store.Create(r);
        var set = new ActivationSetWriter(writer);
        for (var start = 0; start < n; start += shardRows)
        {
            var count = Math.Min(shardRows, n - start);
            var values = rows.AsSpan(start * d, count * d).ToArray();
            var special = new byte[count];
            special[0] = 1; // first row of each shard is "BOS": training must drop it
            var values2 = (float[])values.Clone();
            for (var j = 0; j < d; j++) values2[j] = 1000f; // an outlier only visible if special rows leak in
            set.WriteShard([
                HostTensor.FromFloats(hook, values2, count, d),
                new HostTensor(ActivationSetLayout.SpecialTensor, Stitching.Core.Tensors.DType.U8, [count], special),
            ]);
        }
        set.Describe(new ActivationSetInfo(id, model, "", "", "float32", [hook], "planted-tokens", 1, d, 0, n));
        writer.Commit();
        return r;
    }

    /// <summary>An in-memory shard source for unit tests.</summary>
    public sealed class MemoryShards(float[] rows, int d, int shardRows) : IShardSource
    {
        public int Shards => (rows.Length / d + shardRows - 1) / shardRows;
        public int Width => d;
        public long Tokens => rows.Length / d;
        public Task<ShardRows> LoadAsync(int index, CancellationToken ct)
        {
            var start = index * shardRows;
            var count = Math.Min(shardRows, rows.Length / d - start);
            return Task.FromResult(new ShardRows(rows.AsSpan(start * d, count * d).ToArray(), count));
        }
    }

    public static float[] Floats(Tensor t) => t.detach().cpu().contiguous().to(ScalarType.Float32).data<float>().ToArray();

    public static double MaxAbsDiff(Tensor a, Tensor b) => (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max().item<double>();

    private static double Gaussian(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
}
