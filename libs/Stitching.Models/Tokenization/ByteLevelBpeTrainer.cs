using System.Text.Json;
using System.Text.RegularExpressions;
using Stitching.Core.Errors;

namespace Stitching.Models.Tokenization;

/// <summary>
/// Trains a GPT-2 style byte-level BPE: words from the GPT-2 regex, a 256-byte initial alphabet after the special
/// tokens, then merges of the most frequent adjacent pair (ties: the pair whose token strings sort first, ordinal)
/// until the vocabulary reaches the target size. Word frequencies are counted first and pair counts are updated
/// incrementally over the unique words, so each merge only touches the words that contain its pair.
/// </summary>
public sealed class ByteLevelBpeTrainer
{
    private readonly int _vocabSize;
    private readonly string[] _specialTokens;
    private readonly List<string> _vocab = [];
    private readonly List<(string Left, string Right)> _merges = [];
    private bool _trained;

    /// <param name="vocabSize">Target vocabulary size, special tokens and the 256 bytes included.</param>
    /// <param name="specialTokens">Tokens put first in the vocab (default &lt;|endoftext|&gt;); add &lt;|padding|&gt; here when wanted.</param>
    public ByteLevelBpeTrainer(int vocabSize, IEnumerable<string>? specialTokens = null)
    {
        _specialTokens = (specialTokens ?? ["<|endoftext|>"]).Distinct(StringComparer.Ordinal).ToArray();
        if (_specialTokens.Any(string.IsNullOrEmpty))
            throw StitchingException.InvalidArgument("specialTokens", "contains an empty token; pass non-empty strings.");
        if (vocabSize < _specialTokens.Length + 256)
            throw StitchingException.InvalidArgument("vocabSize", $"is {vocabSize} but must be at least {_specialTokens.Length + 256} (special tokens + 256 bytes); raise it.");
        _vocabSize = vocabSize;
    }

    /// <summary>The trained vocabulary, index = id.</summary>
    public IReadOnlyList<string> Vocab => _vocab;

    /// <summary>The trained merges, index = rank.</summary>
    public IReadOnlyList<(string Left, string Right)> Merges => _merges;

    /// <summary>Learns the vocabulary and merges from texts (special tokens inside them are cut out, not learned).</summary>
    public void Train(IEnumerable<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        _vocab.Clear();
        _merges.Clear();
        _vocab.AddRange(_specialTokens);
        _vocab.AddRange(ByteLevelAlphabet.Characters.Select(c => c.ToString()));
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < _vocab.Count; i++) ids.TryAdd(_vocab[i], i);

        var counts = CountWords(texts);
        var words = counts.Keys.Order(StringComparer.Ordinal).Select(w => w.Select(c => ids[c.ToString()]).ToArray()).ToList();
        var freqs = counts.Keys.Order(StringComparer.Ordinal).Select(w => counts[w]).ToArray();
        new PairMerger(this, ids, words, freqs).Run();
        _trained = true;
    }

    private Dictionary<string, long> CountWords(IEnumerable<string> texts)
    {
        var specials = _specialTokens.Length == 0 ? null
            : new Regex(string.Join('|', _specialTokens.OrderByDescending(s => s.Length).Select(Regex.Escape)), RegexOptions.CultureInvariant);
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var text in texts)
        {
            if (string.IsNullOrEmpty(text)) continue;
            foreach (var part in specials is null ? [text] : specials.Split(text))
                for (var m = PreTokenizers.Gpt2Regex.Match(part); m.Success; m = m.NextMatch())
                {
                    var word = ByteLevelAlphabet.Encode(m.Value);
                    counts[word] = counts.GetValueOrDefault(word) + 1;
                }
        }
        return counts;
    }

    /// <summary>The merge loop over unique words with incremental pair counts and a lazily invalidated max-heap.</summary>
    private sealed class PairMerger(ByteLevelBpeTrainer owner, Dictionary<string, int> ids, List<int[]> words, long[] freqs)
    {
        private readonly Dictionary<long, long> _counts = [];
        private readonly Dictionary<long, HashSet<int>> _where = [];
        private readonly PriorityQueue<long, (long Count, string Left, string Right)> _heap = new(Comparer<(long Count, string Left, string Right)>.Create(
            (x, y) => x.Count != y.Count ? y.Count.CompareTo(x.Count) : string.CompareOrdinal(x.Left, y.Left) is var c && c != 0 ? c : string.CompareOrdinal(x.Right, y.Right)));

        private static long Key(int a, int b) => ((long)a << 32) | (uint)b;

        public void Run()
        {
            for (var w = 0; w < words.Count; w++)
                for (var i = 0; i + 1 < words[w].Length; i++)
                {
                    var k = Key(words[w][i], words[w][i + 1]);
                    _counts[k] = _counts.GetValueOrDefault(k) + freqs[w];
                    Where(k).Add(w);
                }
            foreach (var (k, c) in _counts) Push(k, c);

            while (owner._vocab.Count < owner._vocabSize && Pop() is { } pair)
            {
                var (a, b) = ((int)(pair >> 32), (int)(uint)pair);
                var (left, right) = (owner._vocab[a], owner._vocab[b]);
                if (!ids.TryGetValue(left + right, out var merged))
                {
                    merged = owner._vocab.Count;
                    owner._vocab.Add(left + right);
                    ids[left + right] = merged;
                }
                owner._merges.Add((left, right));
                Apply(pair, a, b, merged);
            }
        }

        private HashSet<int> Where(long k) => _where.TryGetValue(k, out var s) ? s : _where[k] = [];

        private void Push(long k, long count)
        {
            if (count > 0) _heap.Enqueue(k, (count, owner._vocab[(int)(k >> 32)], owner._vocab[(int)(uint)k]));
        }

        /// <summary>The most frequent pair whose queued count is still current.</summary>
        private long? Pop()
        {
            while (_heap.TryDequeue(out var k, out var p))
                if (_counts.GetValueOrDefault(k) == p.Count) return k;
            return null;
        }

        private void Apply(long pair, int a, int b, int merged)
        {
            var delta = new Dictionary<long, long>();
            foreach (var w in _where[pair].Order())
            {
                var old = words[w];
                if (!Contains(old, a, b)) continue;
                var next = new List<int>(old.Length);
                for (var i = 0; i < old.Length; i++)
                {
                    if (i + 1 < old.Length && old[i] == a && old[i + 1] == b) { next.Add(merged); i++; }
                    else next.Add(old[i]);
                }
                for (var i = 0; i + 1 < old.Length; i++) delta[Key(old[i], old[i + 1])] = delta.GetValueOrDefault(Key(old[i], old[i + 1])) - freqs[w];
                for (var i = 0; i + 1 < next.Count; i++)
                {
                    var k = Key(next[i], next[i + 1]);
                    delta[k] = delta.GetValueOrDefault(k) + freqs[w];
                    Where(k).Add(w);
                }
                words[w] = next.ToArray();
            }
            _where.Remove(pair);
            foreach (var (k, d) in delta)
            {
                if (d == 0) continue;
                var c = _counts.GetValueOrDefault(k) + d;
                if (c <= 0) _counts.Remove(k); else _counts[k] = c;
                Push(k, c);
            }
        }

        private static bool Contains(int[] word, int a, int b)
        {
            for (var i = 0; i + 1 < word.Length; i++) if (word[i] == a && word[i + 1] == b) return true;
            return false;
        }
    }

    /// <summary>The trained tokenizer as tokenizer.json text that Hugging Face's tokenizers library loads.</summary>
    public string ToJson()
    {
        if (!_trained) throw StitchingException.FailedPrecondition("The trainer has no result yet; call Train(texts) before ToJson or Save.", "trainer");
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("version", "1.0");
            w.WriteNull("truncation");
            w.WriteNull("padding");
            w.WriteStartArray("added_tokens");
            for (var i = 0; i < _specialTokens.Length; i++)
            {
                w.WriteStartObject();
                w.WriteNumber("id", i);
                w.WriteString("content", _specialTokens[i]);
                foreach (var flag in new[] { "single_word", "lstrip", "rstrip", "normalized" }) w.WriteBoolean(flag, false);
                w.WriteBoolean("special", true);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteNull("normalizer");
            WriteByteLevel(w, "pre_tokenizer");
            WriteByteLevel(w, "post_processor");
            WriteByteLevel(w, "decoder");
            w.WriteStartObject("model");
            w.WriteString("type", "BPE");
            w.WriteNull("dropout");
            w.WriteNull("unk_token");
            w.WriteNull("continuing_subword_prefix");
            w.WriteNull("end_of_word_suffix");
            w.WriteBoolean("fuse_unk", false);
            w.WriteBoolean("byte_fallback", false);
            w.WriteBoolean("ignore_merges", false);
            w.WriteStartObject("vocab");
            for (var i = 0; i < _vocab.Count; i++) w.WriteNumber(_vocab[i], i);
            w.WriteEndObject();
            w.WriteStartArray("merges");
            foreach (var (l, r) in _merges) w.WriteStringValue($"{l} {r}");
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteByteLevel(Utf8JsonWriter w, string name)
    {
        w.WriteStartObject(name);
        w.WriteString("type", "ByteLevel");
        w.WriteBoolean("add_prefix_space", false);
        w.WriteBoolean("trim_offsets", true);
        w.WriteBoolean("use_regex", true);
        w.WriteEndObject();
    }

    /// <summary>Writes <see cref="ToJson"/> to a file (UTF-8, no BOM).</summary>
    public void Save(string path)
    {
        if (string.IsNullOrWhiteSpace(path)) throw StitchingException.InvalidArgument("path", "is empty; pass the tokenizer.json path to write.");
        File.WriteAllText(path, ToJson(), new System.Text.UTF8Encoding(false));
    }
}
