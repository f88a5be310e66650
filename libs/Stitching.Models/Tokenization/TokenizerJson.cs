using System.Text.Json;
using Stitching.Core.Errors;

namespace Stitching.Models.Tokenization;

/// <summary>Small readers over tokenizer.json elements that fail with messages naming the field.</summary>
internal static class TokenizerJson
{
    public static bool IsNull(JsonElement e) => e.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined;

    public static JsonElement? Get(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && !IsNull(v) ? v : null;

    public static string Type(JsonElement e, string field) =>
        Get(e, "type") is { ValueKind: JsonValueKind.String } t ? t.GetString()! :
        throw StitchingException.FailedPrecondition($"{field}.type is missing; the tokenizer.json component needs a \"type\" string.", $"{field}.type");

    public static string? String(JsonElement e, string name) => Get(e, name) is { ValueKind: JsonValueKind.String } v ? v.GetString() : null;

    public static string RequiredString(JsonElement e, string name, string field) =>
        String(e, name) ?? throw StitchingException.FailedPrecondition($"{field}.{name} is missing; tokenizer.json must give it as a string.", $"{field}.{name}");

    public static bool Bool(JsonElement e, string name, bool fallback) =>
        Get(e, name) is { } v && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : fallback;

    public static int Int(JsonElement e, string name, int fallback) =>
        Get(e, name) is { ValueKind: JsonValueKind.Number } v ? v.GetInt32() : fallback;

    public static IEnumerable<JsonElement> Array(JsonElement e, string name) =>
        Get(e, name) is { ValueKind: JsonValueKind.Array } v ? v.EnumerateArray() : [];

    public static StitchingException Unsupported(string field, string type, string supported) =>
        StitchingException.FailedPrecondition(
            $"{field} type '{type}' is not supported by HfTokenizer; supported: {supported}. Use a tokenizer.json with a supported {field}.", $"{field}.type");

    /// <summary>A {"String": s} or {"Regex": r} pattern as a .NET regex.</summary>
    public static System.Text.RegularExpressions.Regex Pattern(JsonElement owner, string field)
    {
        var p = Get(owner, "pattern") ?? throw StitchingException.FailedPrecondition($"{field}.pattern is missing; give {{\"String\": ...}} or {{\"Regex\": ...}}.", $"{field}.pattern");
        if (String(p, "String") is { } literal) return new(System.Text.RegularExpressions.Regex.Escape(literal), System.Text.RegularExpressions.RegexOptions.CultureInvariant);
        if (String(p, "Regex") is { } regex) return new(regex, System.Text.RegularExpressions.RegexOptions.Compiled | System.Text.RegularExpressions.RegexOptions.CultureInvariant);
        throw StitchingException.FailedPrecondition($"{field}.pattern must be {{\"String\": ...}} or {{\"Regex\": ...}}; fix the tokenizer.json.", $"{field}.pattern");
    }
}
