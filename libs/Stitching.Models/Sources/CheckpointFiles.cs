using System.Text.Json;
using Stitching.Core.Errors;

namespace Stitching.Models.Sources;

/// <summary>The files a checkpoint folder holds, and whether a folder has all the required ones.</summary>
public static class CheckpointFiles
{
    public const string Config = "config.json";
    public const string Tokenizer = "tokenizer.json";
    public const string SingleWeights = "model.safetensors";
    public const string WeightIndex = "model.safetensors.index.json";

    /// <summary>Fetched when the repo has them; a checkpoint is complete without them.</summary>
    public static IReadOnlyList<string> Optional { get; } = ["tokenizer_config.json", "generation_config.json", "special_tokens_map.json"];

    /// <summary>The shard files a safetensors index names in its weight_map, each once, in order.</summary>
    public static IReadOnlyList<string> Shards(string indexPath)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(indexPath));
            return doc.RootElement.GetProperty("weight_map").EnumerateObject()
                .Select(p => HubCache.CheckRelative(p.Value.GetString() ?? ""))
                .Distinct(StringComparer.Ordinal)
                .Order(StringComparer.Ordinal)
                .ToList();
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw StitchingException.DataCorrupted($"{indexPath} is not a safetensors index (a JSON object with a \"weight_map\" of tensor name to shard file); delete it and download the model again.", e);
        }
    }

    /// <summary>True when <paramref name="folder"/> has config.json, tokenizer.json and all weights (single file, or index plus every shard).</summary>
    public static bool IsComplete(string folder)
    {
        bool Has(string file) => HubCache.FileResolves(Path.Combine(folder, file));
        if (!Has(Config) || !Has(Tokenizer)) return false;
        if (Has(SingleWeights)) return true;
        return Has(WeightIndex) && Shards(Path.Combine(folder, WeightIndex)).All(Has);
    }
}
