using Stitching.Models.Tokenization;
using Stitching.Tests.Fixtures;
using static Stitching.Tests.Tokenization.TokenizerFixtures;

namespace Stitching.Tests.Tokenization;

/// <summary>Llama-2-like SentencePiece BPE (byte fallback, unk, BOS template) against Hugging Face's Rust tokenizers.</summary>
[Trait("Category", "Unit")]
public class SentencePieceTokenizerTests
{
    private static readonly string[] Extra = ["<s>The dog</s>", "Hello<s>world", "Ω≈ç√ 中文 ✓", "tab\there\r\n"];

    public static TheoryData<bool> Styles => new() { false, true };

    private static (HfTokenizer Tokenizer, string Path) Load(TempDir dir, bool metaspace)
    {
        var path = System.IO.Path.Combine(dir.Path, "tokenizer.json");
        File.WriteAllText(path, SentencePieceJson(metaspace));
        return (HfTokenizer.Load(path), path);
    }

    [Theory]
    [MemberData(nameof(Styles))]
    public void Ids_match_the_rust_tokenizers_with_bos(bool metaspace)
    {
        using var dir = new TempDir();
        var (tokenizer, path) = Load(dir, metaspace);
        foreach (var text in Probes.Concat(Extra))
            Assert.True(OracleIds(path, text).SequenceEqual(tokenizer.Encode(text).Ids),
                $"ids differ for {text}: ours [{string.Join(",", tokenizer.Encode(text).Ids)}] rust [{string.Join(",", OracleIds(path, text))}]");
    }

    [Fact]
    public void Unknown_characters_fall_back_to_byte_tokens()
    {
        using var dir = new TempDir();
        var (tokenizer, _) = Load(dir, metaspace: false);
        var encoding = tokenizer.Encode("é", addSpecialTokens: false);
        // "▁" then the two UTF-8 bytes of é (C3 A9) as <0xC3> <0xA9>.
        Assert.Equal(["▁", "<0xC3>", "<0xA9>"], encoding.Tokens);
        Assert.Equal([(0, 1), (0, 1), (0, 1)], encoding.Offsets);
        Assert.Equal("é", tokenizer.Decode(encoding.Ids));
        Assert.Equal("\uFFFD", tokenizer.Decode([tokenizer.TokenToId("<0xC3>")!.Value]));
    }

    [Theory]
    [MemberData(nameof(Styles))]
    public void Decode_inverts_encode_like_the_rust_decoder(bool metaspace)
    {
        using var dir = new TempDir();
        var (tokenizer, path) = Load(dir, metaspace);
        foreach (var text in Probes.Where(t => t.Length > 0 && t[0] != ' ').Concat(Extra.Skip(2)))
        {
            var ids = tokenizer.Encode(text, addSpecialTokens: false).Ids;
            Assert.Equal(text, tokenizer.Decode(ids));
            Assert.Equal(OracleDecode(path, ids), tokenizer.Decode(ids, skipSpecialTokens: true));
        }
        Assert.Equal("The dog", tokenizer.Decode(tokenizer.Encode("The dog").Ids, skipSpecialTokens: true));
    }

    [Fact]
    public void Bos_comes_from_the_template_and_the_policy()
    {
        using var dir = new TempDir();
        var (tokenizer, _) = Load(dir, metaspace: false);
        Assert.Equal(1, tokenizer.BosId);
        Assert.Equal(2, tokenizer.EosId);
        var model = tokenizer.EncodeWithPolicy("Hello world", BosPolicy.Model);
        Assert.Equal(1, model.Ids[0]);
        Assert.True(model.SpecialTokensMask[0]);
        Assert.Equal(model.Ids.Skip(1), tokenizer.EncodeWithPolicy("Hello world", BosPolicy.Never).Ids);
        Assert.Equal(model.Ids, tokenizer.EncodeWithPolicy("Hello world", BosPolicy.Always).Ids);
        Assert.Equal(model.Ids.Skip(1), tokenizer.Encode("Hello world", addSpecialTokens: false).Ids);
        // A BOS typed in the text is kept by Never; only the template's is dropped.
        Assert.Equal(1, tokenizer.EncodeWithPolicy("<s>Hi", BosPolicy.Never).Ids[0]);
    }

    [Fact]
    public void Tokenizer_config_decides_bos_for_the_model_policy()
    {
        using var dir = new TempDir();
        File.WriteAllText(System.IO.Path.Combine(dir.Path, "tokenizer_config.json"),
            """{"add_bos_token": false, "bos_token": {"content": "<s>"}, "eos_token": "</s>"}""");
        var (tokenizer, _) = Load(dir, metaspace: false);
        Assert.NotEqual(1, tokenizer.EncodeWithPolicy("Hello", BosPolicy.Model).Ids[0]);
        Assert.Equal(1, tokenizer.EncodeWithPolicy("Hello", BosPolicy.Always).Ids[0]);
    }
}
