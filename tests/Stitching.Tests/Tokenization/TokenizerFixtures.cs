using System.Text.Json.Nodes;
using Stitching.Models.Tokenization;

namespace Stitching.Tests.Tokenization;

/// <summary>Test inputs and builders shared by the tokenizer tests, plus the Rust oracle (Tokenizers.DotNet).</summary>
internal static class TokenizerFixtures
{
    /// <summary>Real-looking English for training; the probes below stress whitespace, digits, unicode and specials.</summary>
    public static readonly string[] Corpus =
    [
        "The quick brown fox jumps over the lazy dog. It's the dog's day, isn't it?",
        "In 2023, researchers trained models on 1,000,000 documents; they'll publish the results soon.",
        "We're going to the market, and we've got 12 apples, 7 oranges and 3 bananas.",
        "Transformers process tokens in parallel. Attention weights tell which tokens matter.",
        "She said: \"Hello, world!\" and then    left the room.\nThe door closed.\n\nSilence.",
        "Café owners in Zürich serve crème brûlée; 東京 has great ramen 🍜 and sushi 🍣.",
        "def main():\n    print('hello')\n    return 0\n",
        "I'm sure you'd agree that the model's loss went down from 3.14 to 2.71 after 10k steps.",
    ];

    public static readonly string[] Probes =
    [
        "Hello world",
        " leading space",
        "trailing space ",
        "multiple   spaces    here",
        "line one\nline two\n\n\tindented",
        "Numbers 1234567 and 3.14159, 2023-10-01",
        "Punctuation!?... (parens) [brackets] {braces} #hash @at",
        "Unicode: café, naïve, 東京タワー, emoji 🍜🚀👍🏽",
        "Contractions: it's, we're, they've, I'm, you'll, he'd, don't",
        "The quick brown fox jumps over the lazy dog.",
        "   ",
        "",
        "a",
    ];

    public static IEnumerable<string> TrainingTexts(int repeats = 20) =>
        Enumerable.Range(0, repeats).SelectMany(i => Corpus.Select(t => i % 3 == 0 ? t : $"{t} ({i})"));

    /// <summary>Ids from Hugging Face's Rust tokenizers for a tokenizer.json file (special tokens added as HF's default).</summary>
    public static int[] OracleIds(string tokenizerJsonPath, string text)
    {
        using var oracle = new Tokenizers.DotNet.Tokenizer(vocabPath: tokenizerJsonPath);
        return oracle.Encode(text).Select(i => (int)i).ToArray();
    }

    /// <summary>Text from Hugging Face's Rust decoder; Tokenizers.DotNet decodes with skip_special_tokens=true.</summary>
    public static string OracleDecode(string tokenizerJsonPath, IEnumerable<int> ids)
    {
        using var oracle = new Tokenizers.DotNet.Tokenizer(vocabPath: tokenizerJsonPath);
        return oracle.Decode(ids.Select(i => (uint)i).ToArray());
    }

    /// <summary>A trained byte-level tokenizer.json with a non-special lstrip/rstrip added token for extra coverage.</summary>
    public static string ByteLevelJson(int vocabSize = 600)
    {
        var trainer = new ByteLevelBpeTrainer(vocabSize, ["<|endoftext|>", "<|padding|>"]);
        trainer.Train(TrainingTexts());
        var root = JsonNode.Parse(trainer.ToJson())!;
        var vocab = root["model"]!["vocab"]!.AsObject();
        ((JsonArray)root["added_tokens"]!).Add(new JsonObject
        {
            ["id"] = vocab.Count, ["content"] = "<mask>", ["single_word"] = false, ["lstrip"] = true,
            ["rstrip"] = true, ["normalized"] = false, ["special"] = false,
        });
        return root.ToJsonString();
    }

    /// <summary>The byte-level file switched to Llama 3's pre-tokenizer: Split(regex, Isolated) then ByteLevel(use_regex=false).</summary>
    public static string Llama3Style(string byteLevelJson)
    {
        var root = JsonNode.Parse(byteLevelJson)!;
        const string pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
        root["pre_tokenizer"] = JsonNode.Parse($$"""
            {"type":"Sequence","pretokenizers":[
              {"type":"Split","pattern":{"Regex":{{System.Text.Json.JsonSerializer.Serialize(pattern)}}},"behavior":"Isolated","invert":false},
              {"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}]}
            """);
        return root.ToJsonString();
    }

    /// <summary>
    /// A Llama-2-like SentencePiece BPE built by hand: &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;, 256 byte tokens, the
    /// characters and the pieces below (each built by left-to-right merges, given as [a, b] pairs), BOS via
    /// TemplateProcessing. metaspace=false uses Llama 2's Prepend+Replace normalizer; true uses a Metaspace
    /// pre-tokenizer and decoder.
    /// </summary>
    public static string SentencePieceJson(bool metaspace)
    {
        var vocab = new JsonObject { ["<unk>"] = 0, ["<s>"] = 1, ["</s>"] = 2 };
        for (var b = 0; b < 256; b++) vocab[$"<0x{b:X2}>"] = 3 + b;
        void Add(string t) { if (!vocab.ContainsKey(t)) vocab[t] = vocab.Count; }
        foreach (var c in "▁abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\"-:;()") Add(c.ToString());
        var merges = new JsonArray();
        string[] pieces = ["▁the", "▁The", "▁quick", "▁brown", "▁fox", "▁Hello", "▁world", "▁and", "ing", "▁in", "er", "▁to", "ed", "▁is", "▁it", "on", "▁a", "▁▁", "▁▁▁▁", "re", "▁dog", "▁model"];
        foreach (var p in pieces)
            for (var k = 1; k < p.Length; k++)
            {
                var (left, whole) = (p[..k], p[..(k + 1)]);
                if (vocab.ContainsKey(whole)) continue;
                Add(whole);
                merges.Add(new JsonArray(left, p[k].ToString()));
            }
        var added = new JsonArray(
            Special(0, "<unk>"), Special(1, "<s>"), Special(2, "</s>"));
        var normalizer = metaspace ? null : JsonNode.Parse("""
            {"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]}
            """);
        var preTokenizer = metaspace ? JsonNode.Parse("""{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":false}""") : null;
        var decoder = JsonNode.Parse(metaspace ? """
            {"type":"Sequence","decoders":[{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":false},{"type":"ByteFallback"},{"type":"Fuse"}]}
            """ : """
            {"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]}
            """);
        var root = new JsonObject
        {
            ["version"] = "1.0", ["truncation"] = null, ["padding"] = null, ["added_tokens"] = added,
            ["normalizer"] = normalizer, ["pre_tokenizer"] = preTokenizer,
            ["post_processor"] = JsonNode.Parse("""
                {"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],
                 "pair":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"<s>","type_id":1}},{"Sequence":{"id":"B","type_id":1}}],
                 "special_tokens":{"<s>":{"id":"<s>","ids":[1],"tokens":["<s>"]}}}
                """),
            ["decoder"] = decoder,
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = "<unk>", ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null, ["fuse_unk"] = true, ["byte_fallback"] = true, ["ignore_merges"] = false,
                ["vocab"] = vocab, ["merges"] = merges,
            },
        };
        return root.ToJsonString();

        static JsonObject Special(int id, string content) => new()
        {
            ["id"] = id, ["content"] = content, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
            ["normalized"] = false, ["special"] = true,
        };
    }
}
