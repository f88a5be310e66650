using System.Text.Json;
using Stitching.Core.Errors;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Stitching.Models;

/// <summary>A Hugging Face checkpoint folder: config.json plus model.safetensors (or a sharded index).</summary>
public sealed class Checkpoint
{
    private Checkpoint(string directory, JsonElement config, Dictionary<string, string> weightFiles)
    {
        Directory = directory;
        Config = config;
        _weightFiles = weightFiles;
    }

    private readonly Dictionary<string, string> _weightFiles;
    public string Directory { get; }
    public JsonElement Config { get; }
    public IEnumerable<string> TensorNames => _weightFiles.Keys;

    public static Checkpoint Open(string directory)
    {
        var configPath = Path.Combine(directory, "config.json");
        if (!File.Exists(configPath))
            throw StitchingException.NotFound($"{directory} has no config.json; point to a Hugging Face checkpoint folder.", "model");
        var config = JsonDocument.Parse(File.ReadAllText(configPath)).RootElement.Clone();
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
        else throw StitchingException.NotFound($"{directory} has neither model.safetensors nor model.safetensors.index.json.", "model");
        return new Checkpoint(directory, config, files);
    }

    public int Int(string key) => Config.GetProperty(key).GetInt32();
    public double Double(string key, double fallback) => Config.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : fallback;
    public string String(string key, string fallback) => Config.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : fallback;

    /// <summary>Loads one weight as a float32 tensor (F32, F16, BF16 on disk), looking under each prefix in turn.</summary>
    public Tensor Load(string name, params string[] prefixes)
    {
        foreach (var prefix in prefixes.DefaultIfEmpty(""))
        {
            if (!_weightFiles.TryGetValue(prefix + name, out var file)) continue;
            using var r = SafetensorsReader.Open(file);
            return ToTorch(r.Read(prefix + name));
        }
        throw StitchingException.FailedPrecondition($"checkpoint {Directory} lacks weight '{name}' (tried prefixes: {string.Join(", ", prefixes.Select(p => $"'{p}'"))}).", "model");
    }

    public static Tensor ToTorch(HostTensor t)
    {
        var shape = t.Shape;
        var bytes = t.Data.ToArray();
        return t.DType switch
        {
            DType.F32 => torch.tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).ToArray(), shape),
            DType.F16 => torch.tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(bytes).ToArray().Select(h => (float)h).ToArray(), shape),
            DType.BF16 => torch.tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(bytes).ToArray().Select(u => BitConverter.UInt32BitsToSingle((uint)u << 16)).ToArray(), shape),
            _ => throw StitchingException.FailedPrecondition($"weight '{t.Name}' has dtype {t.DType}; weights must be F32, F16 or BF16.", "model"),
        };
    }
}
