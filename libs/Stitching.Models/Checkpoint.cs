using System.Text.Json;
using Stitching.Core.Errors;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Stitching.Models;

/// <summary>
/// A Hugging Face checkpoint folder: config.json plus model.safetensors (or model.safetensors.index.json
/// and its shards). Weight files are opened once and read one tensor at a time.
/// </summary>
public sealed class Checkpoint : IDisposable
{
    private readonly Dictionary<string, string> _weightFiles;
    private readonly Dictionary<string, SafetensorsReader> _readers = [];

    private Checkpoint(string directory, JsonElement config, Dictionary<string, string> weightFiles)
    {
        Directory = directory;
        Config = config;
        _weightFiles = weightFiles;
    }

    public string Directory { get; }
    public JsonElement Config { get; }
    public IEnumerable<string> TensorNames => _weightFiles.Keys;
    public string ModelType => String("model_type", "");

    public static Checkpoint Open(string directory)
    {
        var configPath = Path.Combine(directory, "config.json");
        if (!File.Exists(configPath))
            throw StitchingException.NotFound($"{directory} has no config.json; point 'model' at a Hugging Face checkpoint folder.", "model");
        JsonElement config;
        try { config = JsonDocument.Parse(File.ReadAllText(configPath)).RootElement.Clone(); }
        catch (JsonException e) { throw StitchingException.FailedPrecondition($"{configPath} is not valid JSON: {e.Message}", "model"); }
        var files = new Dictionary<string, string>();
        var single = Path.Combine(directory, "model.safetensors");
        var index = Path.Combine(directory, "model.safetensors.index.json");
        if (File.Exists(single))
        {
            using var r = SafetensorsReader.Open(single);
            foreach (var e in r.Entries) files[e.Name] = single;
        }
        else if (File.Exists(index))
        {
            foreach (var p in JsonDocument.Parse(File.ReadAllText(index)).RootElement.GetProperty("weight_map").EnumerateObject())
                files[p.Name] = Path.Combine(directory, p.Value.GetString()!);
        }
        else throw StitchingException.NotFound($"{directory} has neither model.safetensors nor model.safetensors.index.json; only safetensors checkpoints load.", "model");
        return new Checkpoint(directory, config, files);
    }

    public bool Has(string key) => Config.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null;

    public int Int(string key) => Has(key) ? Config.GetProperty(key).GetInt32()
        : throw StitchingException.FailedPrecondition($"{Directory}/config.json lacks '{key}'.", "model");

    public int Int(string key, int fallback) => Has(key) ? Config.GetProperty(key).GetInt32() : fallback;
    public double Double(string key, double fallback) => Config.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : fallback;
    public double? OptionalDouble(string key) => Config.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;
    public string String(string key, string fallback) => Config.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : fallback;
    public bool Bool(string key, bool fallback) => Config.TryGetProperty(key, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : fallback;

    /// <summary>A number from transformers 5's rope_parameters block, when the config has one.</summary>
    public double? RopeParameter(string key) =>
        Config.TryGetProperty("rope_parameters", out var rp) && rp.ValueKind == JsonValueKind.Object
        && rp.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;

    /// <summary>Name and shape of every stored tensor (read from the safetensors headers).</summary>
    public IEnumerable<(string Name, long[] Shape)> WeightShapes()
    {
        foreach (var file in _weightFiles.Values.Distinct())
        {
            if (!_readers.TryGetValue(file, out var reader)) _readers[file] = reader = SafetensorsReader.Open(file);
            foreach (var e in reader.Entries) yield return (e.Name, e.Shape);
        }
    }

    /// <summary>Whether the checkpoint stores a weight under the name (after the first matching prefix).</summary>
    public bool HasWeight(string name, params string[] prefixes) => prefixes.DefaultIfEmpty("").Any(p => _weightFiles.ContainsKey(p + name));

    /// <summary>Loads one weight as a float32 tensor (F32, F16, BF16 on disk), looking under each prefix in turn.</summary>
    public Tensor Load(string name, params string[] prefixes) =>
        TryLoad(name, prefixes) ?? throw StitchingException.FailedPrecondition(
            $"checkpoint {Directory} lacks weight '{name}' (tried prefixes: {string.Join(", ", prefixes.DefaultIfEmpty("").Select(p => $"'{p}'"))}).", "model");

    /// <summary>Loads a weight if present (optional biases), else null.</summary>
    public Tensor? TryLoad(string name, params string[] prefixes)
    {
        foreach (var prefix in prefixes.DefaultIfEmpty(""))
        {
            if (!_weightFiles.TryGetValue(prefix + name, out var file)) continue;
            if (!_readers.TryGetValue(file, out var reader)) _readers[file] = reader = SafetensorsReader.Open(file);
            return ToTorch(reader.Read(prefix + name));
        }
        return null;
    }

    /// <summary>A float32 torch tensor from a host tensor stored as F32, F16, BF16 or F64.</summary>
    public static Tensor ToTorch(HostTensor t) => t.DType is DType.F32 or DType.F16 or DType.BF16 or DType.F64
        ? TorchTensors.ToTorchFloat(t, "model")
        : throw StitchingException.FailedPrecondition($"weight '{t.Name}' has dtype {t.DType}; weights must be F32, F16, BF16 or F64.", "model");

    public void Dispose()
    {
        foreach (var r in _readers.Values) r.Dispose();
        _readers.Clear();
    }
}
