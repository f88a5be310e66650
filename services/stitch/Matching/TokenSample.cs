using Stitching.Core.Activations;
using System.Runtime.InteropServices;
using Stitching.Contracts.Common.V1;
using Stitching.Core.Caching;
using Stitching.Core.Safetensors;

namespace Stitching.Stitch.Matching;

/// <summary>
/// Every <c>stride</c>-th token of an ActivationSet (global token index 0, stride, 2 stride, ...), every
/// requested hook, read shard by shard, so the sample spans the whole set rather than its first rows.
/// Two sets over one TokenSet sampled with one stride hold the same tokens.
/// </summary>
public sealed record TokenSample(Dictionary<string, List<float>> Values, List<int> TokenIds, List<byte> Special, int Width)
{
    public static async Task<TokenSample> ReadAsync(IShardCache cache, ArtifactManifest m, IReadOnlyList<string> hooks, long stride, CancellationToken ct)
    {
        var sample = new TokenSample(hooks.ToDictionary(h => h, _ => new List<float>()), [], [], ActivationSetLayout.Width(m));
        var shards = ActivationSetLayout.Shards(m);
        long first = 0; // global index of the shard's first token
        for (var s = 0; s < shards; s++)
        {
            var file = ActivationSetLayout.ShardFile(s);
            using var reader = SafetensorsReader.FromBytes((await cache.GetFileAsync(m.Ref, file, ct)).Bytes, $"{m.Ref.Id}/{file}");
            var ids = MemoryMarshal.Cast<byte, int>(reader.Read("token_ids").Data.Span).ToArray();
            var special = reader.Read("special").Data.ToArray();
            var rows = new List<int>();
            for (var i = (int)((stride - first % stride) % stride); i < ids.Length; i += (int)stride) rows.Add(i);
            foreach (var h in hooks)
            {
                var values = reader.Read(h).ToFloats();
                foreach (var r in rows) sample.Values[h].AddRange(values.AsSpan(r * sample.Width, sample.Width));
            }
            foreach (var r in rows)
            {
                sample.TokenIds.Add(ids[r]);
                sample.Special.Add(special[r]);
            }
            first += ids.Length;
        }
        return sample;
    }
}
