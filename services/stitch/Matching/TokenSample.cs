using Stitching.Core.Activations;

namespace Stitching.Stitch.Matching;

/// <summary>
/// Every <c>stride</c>-th token of an ActivationSet (global token index 0, stride, 2 stride, ...), every
/// requested hook, read shard by shard, so the sample spans the whole set rather than its first rows.
/// Two sets over one TokenSet sampled with one stride hold the same tokens.
/// </summary>
public sealed record TokenSample(Dictionary<string, List<float>> Values, List<int> TokenIds, List<byte> Special, int Width)
{
    public static async Task<TokenSample> ReadAsync(ActivationSetReader set, IReadOnlyList<string> hooks, long stride, CancellationToken ct)
    {
        var sample = new TokenSample(hooks.ToDictionary(h => h, _ => new List<float>()), [], [], set.Info.Width);
        long first = 0; // global index of the shard's first token
        for (var s = 0; s < set.Info.Shards; s++)
        {
            using var shard = await set.ReadAsync(s, ct);
            var ids = shard.TokenIds();
            var special = shard.Special() ?? new byte[ids.Length];
            var rows = new List<int>();
            for (var i = (int)((stride - first % stride) % stride); i < ids.Length; i += (int)stride) rows.Add(i);
            foreach (var h in hooks)
            {
                var values = shard.Values(h);
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
