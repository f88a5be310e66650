using Stitching.Core.Errors;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Stitching.Models.Runtime;

/// <summary>Sampling settings: temperature 0 is greedy; top-k and top-p filter before sampling.</summary>
public sealed record SamplingOptions(int MaxNewTokens, double Temperature = 0, int TopK = 0, double TopP = 1, ulong Seed = 0, int? StopToken = null, bool KvCache = true);

/// <summary>
/// Autoregressive generation with interventions applied on every step's forward. With the KV cache (the
/// default) the first step runs the prompt and each later step only its new token, attending over cached
/// keys and values; without it each step re-runs the whole prefix (O(T^2) in length). Both give the same
/// logits (up to float rounding) when every step's interventions agree on the earlier positions, as the
/// ones Generate builds do (the same rewrite at every position, or at the prompt's positions).
/// </summary>
public static class Generation
{
    /// <param name="interventionsFor">Interventions for a step, given the current length.</param>
    public static (List<int> NewIds, string StopReason) Generate(CausalLm model, IReadOnlyList<int> prompt, SamplingOptions options,
        Func<int, IReadOnlyDictionary<HookPoint, IReadOnlyList<IIntervention>>> interventionsFor, CancellationToken ct = default)
    {
        Validate(model, prompt, options);
        using var session = new GenerationSession(model, prompt, options, interventionsFor);
        while (!session.Done)
        {
            ct.ThrowIfCancellationRequested();
            session.Step();
        }
        return (session.NewIds, session.StopReason);
    }

    /// <summary>Checks a prompt and sampling options against a model (any thread).</summary>
    public static void Validate(CausalLm model, IReadOnlyList<int> prompt, SamplingOptions options)
    {
        if (prompt.Count == 0) throw StitchingException.InvalidArgument("prompt", "is empty; give a prompt text or prompt_ids.");
        if (options.MaxNewTokens <= 0) throw StitchingException.InvalidArgument("max_new_tokens", "must be positive.");
        if (!(options.Temperature >= 0) || !double.IsFinite(options.Temperature) || options.Temperature is > 0 and < 1e-3 || options.Temperature > 100)
            throw StitchingException.InvalidArgument("temperature", $"is {options.Temperature}; use 0 (greedy) or a value in [0.001, 100].");
        if (!(options.TopP is > 0 and <= 1)) throw StitchingException.InvalidArgument("top_p", $"is {options.TopP}; it must lie in (0, 1] (0 or 1 = no nucleus filter).");
        if (options.TopK < 0 || options.TopK > model.VocabSize) throw StitchingException.InvalidArgument("top_k", $"is {options.TopK}; it must lie in 0..{model.VocabSize} (0 = no top-k filter).");
        if (prompt.Any(i => i < 0 || i >= model.VocabSize)) throw StitchingException.InvalidArgument("prompt_ids", $"ids must lie in 0..{model.VocabSize - 1}.");
        if (model.MaxPositions is { } max && prompt.Count + options.MaxNewTokens > max)
            throw StitchingException.InvalidArgument("max_new_tokens", $"prompt ({prompt.Count}) + max_new_tokens ({options.MaxNewTokens}) exceed the model's {max} positions.");
    }

    internal static int Choose(Tensor logits, SamplingOptions o, Generator generator)
    {
        if (o.Temperature == 0) return (int)logits.argmax().item<long>();
        var scaled = logits / o.Temperature;
        if (o.TopK > 0 && o.TopK < scaled.shape[0])
        {
            var kth = scaled.topk(o.TopK).values[-1];
            scaled = scaled.masked_fill(scaled < kth, float.NegativeInfinity);
        }
        if (o.TopP is > 0 and < 1)
        {
            var (sorted, order) = scaled.sort(descending: true);
            var cumulative = F.softmax(sorted, 0).cumsum(0);
            // drop tokens once the mass before them already reaches top_p (the first token always stays)
            var drop = (cumulative - F.softmax(sorted, 0)) >= o.TopP;
            scaled = scaled.scatter(0, order, sorted.masked_fill(drop, float.NegativeInfinity));
        }
        return (int)multinomial(F.softmax(scaled, 0), 1, generator: generator).item<long>();
    }
}

/// <summary>
/// One generation, a token per <see cref="Step"/> (torch thread), so a host can run other work between
/// steps instead of holding its torch thread for the whole generation. Validate with <see cref="Generation.Generate"/>'s checks first.
/// </summary>
public sealed class GenerationSession(CausalLm model, IReadOnlyList<int> prompt, SamplingOptions options,
    Func<int, IReadOnlyDictionary<HookPoint, IReadOnlyList<IIntervention>>> interventionsFor) : IDisposable
{
    private readonly List<int> _ids = prompt.ToList();
    private readonly KvCache? _cache = options.KvCache ? new KvCache(model.Layers) : null;
    private Generator? _generator;

    public List<int> NewIds { get; } = [];
    public bool Done { get; private set; }
    public string StopReason { get; private set; } = "length";

    public void Step()
    {
        if (Done) return;
        _generator ??= new Generator(options.Seed);
        using var scope = NewDisposeScope();
        var fresh = _cache is null ? _ids : _ids.Skip(_cache.Length).ToList(); // with the cache: the prompt, then one token a step
        var input = tensor(fresh.Select(i => (long)i).ToArray(), [1, fresh.Count]);
        var logits = model.Forward(new ForwardRequest { Ids = input, Logits = true, Interventions = interventionsFor(_ids.Count), Cache = _cache }).Logits!;
        var next = Generation.Choose(logits[0, -1].to(ScalarType.Float32), options, _generator);
        _ids.Add(next);
        NewIds.Add(next);
        if (next == options.StopToken) { Done = true; StopReason = "eos"; }
        else if (NewIds.Count >= options.MaxNewTokens) Done = true;
        if (Done) _cache?.Dispose();
    }

    /// <summary>Frees the cache (a session abandoned before it is done).</summary>
    public void Dispose() => _cache?.Dispose();
}
