using System.Text.Json.Nodes;

namespace Stitching.Reports;

/// <summary>Lenient reads of report.json values: a missing key or a null is NaN, an empty string or an empty list.</summary>
internal static class JsonRead
{
    public static double D(this JsonNode? node, string key) => Number(node?[key]);

    /// <summary>A number whether it was parsed from text or built in memory from an int, long, float or double.</summary>
    public static double Number(JsonNode? node) => node is not JsonValue v ? double.NaN
        : v.TryGetValue<double>(out var d) ? d : v.TryGetValue<long>(out var l) ? l : v.TryGetValue<int>(out var i) ? i : v.TryGetValue<float>(out var f) ? f : double.NaN;

    public static string S(this JsonNode? node, string key) => node?[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : "";

    public static bool B(this JsonNode? node, string key) => node?[key] is JsonValue v && v.TryGetValue<bool>(out var b) && b;

    public static IReadOnlyList<JsonNode> List(this JsonNode? node, string key) =>
        node?[key] is JsonArray a ? a.Where(x => x is not null).Select(x => x!).ToList() : [];

    public static double[] Numbers(this JsonNode? node, string key) =>
        node?[key] is JsonArray a ? a.Select(Number).ToArray() : [];
}
