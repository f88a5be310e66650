using System.Collections.Concurrent;
using System.Text.Json;
using Stitching.Core.Errors;
using static Stitching.Models.Tokenization.TokenizerJson;

namespace Stitching.Models.Tokenization;

/// <summary>
/// Hugging Face's BPE model: splits a word into characters (or &lt;0xNN&gt; byte tokens, or unk), then applies
/// merges lowest rank first with a priority queue. Results are cached per word.
/// </summary>
internal sealed class BpeModel
{
    private const int CacheCapacity = 100_000;
    private readonly Dictionary<string, int> _vocab;
    private readonly string?[] _tokens;
    private readonly Dictionary<long, (int Rank, int NewId)> _merges;
    private readonly int? _unkId;
    private readonly bool _byteFallback;
    private readonly bool _fuseUnk;
    private readonly bool _ignoreMerges;
    private readonly int[] _byteIds;
    private readonly ConcurrentDictionary<string, (int Id, int Start, int End)[]> _cache = new(StringComparer.Ordinal);

    private BpeModel(Dictionary<string, int> vocab, Dictionary<long, (int, int)> merges, int? unkId, bool byteFallback, bool fuseUnk, bool ignoreMerges)
    {
        _vocab = vocab;
        _merges = merges;
        _unkId = unkId;
        _byteFallback = byteFallback;
        _fuseUnk = fuseUnk;
        _ignoreMerges = ignoreMerges;
        _tokens = new string?[vocab.Count == 0 ? 0 : vocab.Values.Max() + 1];
        foreach (var (t, id) in vocab) _tokens[id] = t;
        _byteIds = new int[256];
        for (var b = 0; b < 256; b++) _byteIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out var id) ? id : -1;
    }

    public int Size => _tokens.Length;

    public int? TokenToId(string token) => _vocab.TryGetValue(token, out var id) ? id : null;

    public string? IdToToken(int id) => id >= 0 && id < _tokens.Length ? _tokens[id] : null;

    public static BpeModel Parse(JsonElement model, string field = "model")
    {
        var type = String(model, "type") ?? "BPE";
        if (type != "BPE") throw Unsupported(field, type, "BPE");
        if (String(model, "continuing_subword_prefix") is { Length: > 0 } || String(model, "end_of_word_suffix") is { Length: > 0 })
            throw StitchingException.FailedPrecondition(
                $"{field}.continuing_subword_prefix / end_of_word_suffix are not supported; use a tokenizer.json where both are null.", $"{field}.continuing_subword_prefix");
        if (Get(model, "dropout") is { ValueKind: JsonValueKind.Number } d && d.GetDouble() > 0)
            throw StitchingException.FailedPrecondition($"{field}.dropout is not supported for inference; set it to null.", $"{field}.dropout");

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        if (Get(model, "vocab") is { ValueKind: JsonValueKind.Object } v)
            foreach (var p in v.EnumerateObject()) vocab[p.Name] = p.Value.GetInt32();

        var merges = new Dictionary<long, (int, int)>();
        var rank = 0;
        foreach (var m in Array(model, "merges"))
        {
            var (a, b) = MergePair(m, $"{field}.merges[{rank}]");
            merges[Key(Lookup(vocab, a, field, rank), Lookup(vocab, b, field, rank))] = (rank, Lookup(vocab, a + b, field, rank));
            rank++;
        }

        int? unkId = null;
        if (String(model, "unk_token") is { } unk)
            unkId = vocab.TryGetValue(unk, out var u) ? u : throw StitchingException.FailedPrecondition(
                $"{field}.unk_token '{unk}' is not in {field}.vocab; add it to the vocab or set unk_token to null.", $"{field}.unk_token");
        return new BpeModel(vocab, merges, unkId, Bool(model, "byte_fallback", false), Bool(model, "fuse_unk", false), Bool(model, "ignore_merges", false));
    }

    private static (string, string) MergePair(JsonElement m, string field)
    {
        if (m.ValueKind == JsonValueKind.String)
        {
            var parts = m.GetString()!.Split(' ');
            if (parts.Length == 2) return (parts[0], parts[1]);
        }
        else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2 && m[0].ValueKind == JsonValueKind.String && m[1].ValueKind == JsonValueKind.String)
            return (m[0].GetString()!, m[1].GetString()!);
        throw StitchingException.FailedPrecondition($"{field} must be \"a b\" or [\"a\", \"b\"]; fix the merges in tokenizer.json.", field);
    }

    private static int Lookup(Dictionary<string, int> vocab, string token, string field, int rank) =>
        vocab.TryGetValue(token, out var id) ? id : throw StitchingException.FailedPrecondition(
            $"{field}.merges[{rank}] uses '{token}', which is not in {field}.vocab; the vocab and merges must come from the same tokenizer.", $"{field}.merges");

    private static long Key(int a, int b) => ((long)a << 32) | (uint)b;

    /// <summary>Tokens of one word as (id, start, end) UTF-16 spans within the word.</summary>
    public (int Id, int Start, int End)[] Tokenize(string word)
    {
        if (_cache.TryGetValue(word, out var cached)) return cached;
        var result = _ignoreMerges && _vocab.TryGetValue(word, out var whole) ? [(whole, 0, word.Length)] : Merge(word);
        if (_cache.Count < CacheCapacity) _cache.TryAdd(word, result);
        return result;
    }

    private (int Id, int Start, int End)[] Merge(string word)
    {
        var symbols = Initial(word);
        var queue = new PriorityQueue<(int Pos, int NewId), (int Rank, int Pos)>();
        for (var i = 0; i + 1 < symbols.Count; i++) Enqueue(queue, symbols, i);
        while (queue.TryDequeue(out var top, out _))
        {
            var left = symbols[top.Pos];
            if (left.Removed || left.Next < 0) continue;
            var right = symbols[left.Next];
            if (!_merges.TryGetValue(Key(left.Id, right.Id), out var m) || m.NewId != top.NewId) continue;
            symbols[top.Pos] = left with { Id = top.NewId, End = right.End, Next = right.Next };
            symbols[left.Next] = right with { Removed = true };
            if (right.Next >= 0) symbols[right.Next] = symbols[right.Next] with { Prev = top.Pos };
            if (left.Prev >= 0) Enqueue(queue, symbols, left.Prev);
            Enqueue(queue, symbols, top.Pos);
        }
        return symbols.Where(s => !s.Removed).Select(s => (s.Id, s.Start, s.End)).ToArray();
    }

    private void Enqueue(PriorityQueue<(int, int), (int, int)> queue, List<Symbol> symbols, int pos)
    {
        var s = symbols[pos];
        if (s.Next < 0) return;
        if (_merges.TryGetValue(Key(s.Id, symbols[s.Next].Id), out var m)) queue.Enqueue((pos, m.NewId), (m.Rank, pos));
    }

    private readonly record struct Symbol(int Id, int Start, int End, int Prev, int Next, bool Removed);

    /// <summary>One symbol per code point: its vocab id, else its byte tokens, else unk (fused if asked), else dropped.</summary>
    private List<Symbol> Initial(string word)
    {
        var ids = new List<(int Id, int Start, int End)>(word.Length);
        Span<byte> utf8 = stackalloc byte[4];
        var lastWasUnk = false;
        for (var i = 0; i < word.Length;)
        {
            var width = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            var end = i + width;
            if (_vocab.TryGetValue(word.Substring(i, width), out var id)) { ids.Add((id, i, end)); lastWasUnk = false; }
            else if (_byteFallback && ByteIds(word, i, width, utf8) is { } bytes) { foreach (var b in bytes) ids.Add((b, i, end)); lastWasUnk = false; }
            else if (_unkId is { } unk)
            {
                if (_fuseUnk && lastWasUnk) ids[^1] = ids[^1] with { End = end };
                else ids.Add((unk, i, end));
                lastWasUnk = true;
            }
            i = end;
        }
        var symbols = new List<Symbol>(ids.Count);
        for (var i = 0; i < ids.Count; i++) symbols.Add(new Symbol(ids[i].Id, ids[i].Start, ids[i].End, i - 1, i + 1 < ids.Count ? i + 1 : -1, false));
        return symbols;
    }

    private int[]? ByteIds(string word, int at, int width, Span<byte> utf8)
    {
        var rune = width == 2 ? new System.Text.Rune(word[at], word[at + 1]) : System.Text.Rune.IsValid(word[at]) ? new System.Text.Rune(word[at]) : System.Text.Rune.ReplacementChar;
        var n = rune.EncodeToUtf8(utf8);
        var ids = new int[n];
        for (var b = 0; b < n; b++) if ((ids[b] = _byteIds[utf8[b]]) < 0) return null;
        return ids;
    }
}
