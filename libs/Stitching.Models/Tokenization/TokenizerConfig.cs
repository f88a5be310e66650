using System.Text.Json;
using static Stitching.Models.Tokenization.TokenizerJson;

namespace Stitching.Models.Tokenization;

/// <summary>The parts of a transformers tokenizer_config.json that decide BOS/EOS: bos_token, eos_token, add_bos_token.</summary>
internal sealed record TokenizerConfig(string? BosToken, string? EosToken, bool? AddBosToken)
{
    public static TokenizerConfig? ReadNextTo(string tokenizerJsonPath)
    {
        var path = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(tokenizerJsonPath)) ?? ".", "tokenizer_config.json");
        if (!File.Exists(path)) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var root = doc.RootElement;
            bool? addBos = Get(root, "add_bos_token") is { } b && b.ValueKind is JsonValueKind.True or JsonValueKind.False ? b.GetBoolean() : null;
            return new TokenizerConfig(TokenName(root, "bos_token"), TokenName(root, "eos_token"), addBos);
        }
        catch (JsonException e)
        {
            throw Stitching.Core.Errors.StitchingException.FailedPrecondition(
                $"tokenizer_config.json next to the tokenizer is not valid JSON ({e.Message}); fix or remove it.", "tokenizer_config.json");
        }
    }

    /// <summary>A token given as a string or as an AddedToken object with "content".</summary>
    private static string? TokenName(JsonElement root, string name) => Get(root, name) switch
    {
        { ValueKind: JsonValueKind.String } s => s.GetString(),
        { ValueKind: JsonValueKind.Object } o => String(o, "content"),
        _ => null,
    };
}
