using Stitching.Core.Activations;
using System.Runtime.InteropServices;
using Stitching.Contracts.Common.V1;
using Stitching.Core.Caching;
using Stitching.Core.Safetensors;

namespace Stitching.Stitch.Matching;

/// <summary>The first tokens of an ActivationSet, every requested hook, read shard by shard.</summary>
public sealed record TokenSample(Dictionary<string, List<float>> Values, List<int> TokenIds, List<byte> Special, int Width)
{
    /// <summary>Reads shards until <paramref name="enough"/> says stop (given tokens and non-special tokens read) or the set ends.</summary>
    public static async Task<TokenSample> ReadAsync(IShardCache cache, ArtifactManifest m, IReadOnlyList<string> hooks, Func<int, int, bool> enough, CancellationToken ct)
    {
        var sample = new TokenSample(hooks.ToDictionary(h => h, _ => new List<float>()), [], [], int.Parse(m.Metadata.GetValueOrDefault("width", "0")));
        var shards = int.Parse(m.Metadata.GetValueOrDefault("shards", "0"));
        for (var s = 0; s < shards && !enough(sample.TokenIds.Count, sample.Special.Count(x => x == 0)); s++)
        {
            var file = ActivationSetLayout.ShardFile(s);
            using var reader = SafetensorsReader.FromBytes((await cache.GetFileAsync(m.Ref, file, ct)).Bytes, $"{m.Ref.Id}/{file}");
            foreach (var h in hooks) sample.Values[h].AddRange(reader.Read(h).ToFloats());
            sample.TokenIds.AddRange(MemoryMarshal.Cast<byte, int>(reader.Read("token_ids").Data.Span).ToArray());
            sample.Special.AddRange(reader.Read("special").Data.ToArray());
        }
        return sample;
    }

    /// <summary>Token count at which the first <paramref name="tokens"/> non-special tokens are covered.</summary>
    public int PrefixFor(int tokens)
    {
        var seen = 0;
        for (var i = 0; i < Special.Count; i++)
            if (Special[i] == 0 && ++seen == tokens) return i + 1;
        return Special.Count;
    }
}
