using Stitching.Core.Errors;
using Stitching.Models.Tokenization;
using Stitching.Tests.Fixtures;

namespace Stitching.Tests.Tokenization;

[Trait("Category", "Unit")]
public class HfTokenizerErrorTests
{
    [Fact]
    public void Missing_file_is_not_found()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<StitchingException>(() => HfTokenizer.Load(Path.Combine(dir.Path, "tokenizer.json")));
        Assert.Equal(ErrorKind.NotFound, e.Kind);
        Assert.Contains("tokenizerJsonPath", e.Message);
    }

    [Theory]
    [InlineData("""{"model":{"type":"WordPiece","vocab":{}}}""", "model.type", "WordPiece")]
    [InlineData("""{"pre_tokenizer":{"type":"Whitespace"},"model":{"type":"BPE","vocab":{},"merges":[]}}""", "pre_tokenizer.type", "Whitespace")]
    [InlineData("""{"normalizer":{"type":"NFKC"},"model":{"type":"BPE","vocab":{},"merges":[]}}""", "normalizer.type", "NFKC")]
    [InlineData("""{"decoder":{"type":"WordPiece"},"model":{"type":"BPE","vocab":{},"merges":[]}}""", "decoder.type", "WordPiece")]
    public void Unsupported_components_fail_precondition_naming_them(string json, string field, string type)
    {
        var e = Assert.Throws<StitchingException>(() => HfTokenizer.FromJson(json));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Equal(field, e.Field);
        Assert.Contains(type, e.Message);
    }

    [Fact]
    public void Merge_with_a_token_outside_the_vocab_fails_precondition()
    {
        var e = Assert.Throws<StitchingException>(() => HfTokenizer.FromJson("""{"model":{"type":"BPE","vocab":{"a":0},"merges":["a b"]}}"""));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains("'b'", e.Message);
    }
}
