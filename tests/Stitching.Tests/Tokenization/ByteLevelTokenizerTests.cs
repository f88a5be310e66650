using Stitching.Models.Tokenization;
using Stitching.Tests.Fixtures;
using static Stitching.Tests.Tokenization.TokenizerFixtures;

namespace Stitching.Tests.Tokenization;

/// <summary>Byte-level BPE (GPT-2 and Llama 3 pre-tokenizers) against Hugging Face's Rust tokenizers.</summary>
[Trait("Category", "Unit")]
public class ByteLevelTokenizerTests
{
    private static readonly string[] WithSpecials =
    [
        "Hello<|endoftext|>world",
        "first document<|endoftext|> second document <|endoftext|>",
        "<|padding|><|padding|>The dog",
        "Fill the <mask> here and <mask>  there",
    ];

    public static TheoryData<bool> Styles => new() { false, true };

    [Theory]
    [MemberData(nameof(Styles))]
    public void Ids_match_the_rust_tokenizers(bool llama3)
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "tokenizer.json");
        var json = ByteLevelJson();
        File.WriteAllText(path, llama3 ? Llama3Style(json) : json);
        var tokenizer = HfTokenizer.Load(path);
        foreach (var text in Probes.Concat(WithSpecials))
            Assert.True(OracleIds(path, text).SequenceEqual(tokenizer.Encode(text).Ids),
                $"ids differ for {text}: ours [{string.Join(",", tokenizer.Encode(text).Ids)}] rust [{string.Join(",", OracleIds(path, text))}]");
    }

    [Fact]
    public void Merges_actually_apply_and_specials_are_single_tokens()
    {
        var tokenizer = HfTokenizer.FromJson(ByteLevelJson());
        var text = "The quick brown fox<|endoftext|>";
        var encoding = tokenizer.Encode(text);
        Assert.True(encoding.Count < System.Text.Encoding.UTF8.GetByteCount(text) / 2, "trained merges should compress English");
        Assert.Equal(tokenizer.TokenToId("<|endoftext|>"), encoding.Ids[^1]);
        Assert.True(encoding.SpecialTokensMask[^1]);
        Assert.DoesNotContain(true, encoding.SpecialTokensMask.Take(encoding.Count - 1));
        Assert.Equal("Ġquick", tokenizer.IdToToken(tokenizer.Encode(" quick").Ids.Single()));
    }

    [Theory]
    [MemberData(nameof(Styles))]
    public void Decode_inverts_encode_like_the_rust_decoder(bool llama3)
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "tokenizer.json");
        File.WriteAllText(path, llama3 ? Llama3Style(ByteLevelJson()) : ByteLevelJson());
        var tokenizer = HfTokenizer.Load(path);
        foreach (var text in Probes.Concat(WithSpecials.Take(3)))
        {
            var ids = tokenizer.Encode(text).Ids;
            Assert.Equal(text, tokenizer.Decode(ids));
            Assert.Equal(OracleDecode(path, ids), tokenizer.Decode(ids, skipSpecialTokens: true));
        }
        Assert.Equal("Helloworld", tokenizer.Decode(tokenizer.Encode("Hello<|endoftext|>world").Ids, skipSpecialTokens: true));
    }

    [Fact]
    public void Offsets_point_into_the_original_text()
    {
        var tokenizer = HfTokenizer.FromJson(ByteLevelJson());
        var text = "Hello world, café 🍜!";
        var encoding = tokenizer.Encode(text);
        Assert.Equal((0, 5), encoding.Offsets[0]);
        Assert.Equal(" world", text[encoding.Offsets[1].Start..encoding.Offsets[1].End]);
        foreach (var (s, e) in encoding.Offsets) Assert.True(0 <= s && s < e && e <= text.Length, $"bad span {s}..{e}");
        // The emoji's four bytes may span tokens; every such token covers the whole surrogate pair.
        var emojiAt = text.IndexOf("🍜", StringComparison.Ordinal);
        Assert.Contains(encoding.Offsets, o => o == (emojiAt, emojiAt + 2) || o == (emojiAt - 1, emojiAt + 2));
    }

    [Fact]
    public void Bos_policy_adds_or_leaves_bos_on_a_tokenizer_without_template()
    {
        var tokenizer = HfTokenizer.FromJson(ByteLevelJson());
        var eot = tokenizer.TokenToId("<|endoftext|>");
        Assert.Equal(eot, tokenizer.BosId);
        Assert.Equal(eot, tokenizer.EosId);
        Assert.Equal(tokenizer.Encode("Hi there").Ids, tokenizer.EncodeWithPolicy("Hi there", BosPolicy.Model).Ids);
        Assert.Equal(tokenizer.Encode("Hi there").Ids, tokenizer.EncodeWithPolicy("Hi there", BosPolicy.Never).Ids);
        Assert.Equal([eot!.Value, .. tokenizer.Encode("Hi there").Ids], tokenizer.EncodeWithPolicy("Hi there", BosPolicy.Always).Ids);
    }
}
