using Stitching.Models;
using Stitching.Models.Families;
using Stitching.Models.Runtime;
using Stitching.Tests.Fixtures;
using TorchSharp;

namespace Stitching.Tests.Models;

/// <summary>
/// The KV cache against the uncached forward, on every family's random Hugging Face checkpoint: the logits
/// of a step-by-step cached run equal the full forward's at every position (Gemma-2's sliding window of 4 is
/// crossed), and greedy generation is token for token the same with and without the cache, with no
/// intervention, with a clamp at every position, and with an addition limited to the prompt's positions.
/// </summary>
public class KvCacheTests
{
    public static TheoryData<string> Families => new() { "gpt2", "gpt_neox", "gpt_neox_seq", "llama", "qwen2", "gemma2" };

    [Theory]
    [MemberData(nameof(Families))]
    public void Cached_steps_give_the_full_forwards_logits(string family)
    {
        using var model = ModelFamilies.Load(HfReference.Checkpoint(family));
        using var scope = torch.NewDisposeScope();
        var ids = torch.tensor(Enumerable.Range(0, 11).Select(i => (long)(3 + i * 7 % (model.VocabSize - 3))).ToArray(), [1, 11]);
        var full = model.Forward(new ForwardRequest { Ids = ids, Logits = true }).Logits!;
        using var cache = new KvCache(model.Layers);
        var parts = new List<torch.Tensor> { model.Forward(new ForwardRequest { Ids = ids[.., ..5], Logits = true, Cache = cache }).Logits! };
        for (var t = 5; t < 11; t++) parts.Add(model.Forward(new ForwardRequest { Ids = ids[.., t..(t + 1)], Logits = true, Cache = cache }).Logits!);
        Assert.Equal(11, cache.Length);
        var err = HfReference.RelativeError(full, torch.cat(parts, 1));
        Assert.True(err < 1e-5, $"{family}: cached logits differ from the full forward's by {err:E2} (relative)");
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Greedy_generation_is_the_same_with_and_without_the_cache(string family)
    {
        using var model = ModelFamilies.Load(HfReference.Checkpoint(family));
        var prompt = new[] { 5, 9, 2, 7, 11 };
        var hook = new HookPoint(HookSite.ResidPre, 1);
        var g = new torch.Generator(3);
        var direction = torch.randn([model.Width], generator: g).DetachFromDisposeScope();
        var added = (torch.randn([model.Width], generator: g) * 20).DetachFromDisposeScope(); // large: Gemma-2 scales its embeddings by sqrt(d)
        var cases = new Dictionary<string, Func<int, IReadOnlyDictionary<HookPoint, IReadOnlyList<IIntervention>>>>
        {
            ["none"] = _ => new Dictionary<HookPoint, IReadOnlyList<IIntervention>>(),
            ["clamp everywhere"] = _ => new Dictionary<HookPoint, IReadOnlyList<IIntervention>> { [hook] = [new ClampIntervention(direction, 30.0)] },
            ["add on the prompt"] = _ => new Dictionary<HookPoint, IReadOnlyList<IIntervention>> { [hook] = [new AddIntervention(added, 1, Enumerable.Range(0, prompt.Length).ToList())] },
        };
        var outputs = new List<List<int>>();
        foreach (var (name, interventions) in cases)
        {
            var (cached, _) = Generation.Generate(model, prompt, new SamplingOptions(12, KvCache: true), interventions);
            var (uncached, _) = Generation.Generate(model, prompt, new SamplingOptions(12, KvCache: false), interventions);
            Assert.True(uncached.SequenceEqual(cached), $"{family}, {name}: uncached {string.Join(",", uncached)} vs cached {string.Join(",", cached)}");
            outputs.Add(cached);
        }
        Assert.True(outputs.Distinct(new SequenceComparer()).Count() > 1, $"{family}: the interventions changed nothing, so they test nothing");
        direction.Dispose();
        added.Dispose();
    }

    private sealed class SequenceComparer : IEqualityComparer<List<int>>
    {
        public bool Equals(List<int>? a, List<int>? b) => a!.SequenceEqual(b!);
        public int GetHashCode(List<int> s) => s.Aggregate(17, (h, x) => h * 31 + x);
    }
}
