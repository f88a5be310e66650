using System.Collections.Concurrent;
using System.Security.Cryptography;

using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Stitching.Contracts.Activations.V1;
using Stitching.Core.Compute;
using Stitching.Core.Errors;
using Stitching.Hosting;
using Stitching.Models;
using Stitching.Models.Families;
using Stitching.Models.Tokenization;
using static TorchSharp.torch;

namespace Stitching.Activations.ModelHosting;

/// <summary>
/// Loads models on the torch worker, keeps at most Stitching:MaxLoadedModels of them (least recently
/// used unloaded first) and describes models from their config without loading weights.
/// </summary>
public sealed class ModelHost(ModelCatalog catalog, TorchWorker worker, IOptions<StitchingOptions> options, ILogger<ModelHost> log) : IDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<Task<LoadedModel>>> _loaded = new();
    private static readonly ConcurrentDictionary<string, string> Fingerprints = new();

    public ModelCatalog Catalog => catalog;

    public IEnumerable<LoadedModel> Loaded => _loaded.Values.Where(l => l.Value.IsCompletedSuccessfully).Select(l => l.Value.Result);

    public static ScalarType ParseDType(string? dtype) => dtype switch
    {
        null or "" or "float32" or "f32" => ScalarType.Float32,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        "float16" or "f16" => ScalarType.Float16,
        _ => throw StitchingException.InvalidArgument("model.dtype", $"'{dtype}' is not supported; use float32, bfloat16 or float16."),
    };

    public static string DTypeName(ScalarType t) => t switch { ScalarType.BFloat16 => "bfloat16", ScalarType.Float16 => "float16", _ => "float32" };

    private string DeviceOf(ModelSpec spec) => string.IsNullOrEmpty(spec.Device) ? options.Value.Device : ParseDevice(spec.Device, "model.device");

    /// <summary>"cpu", "cuda" or "cuda:N" for a GPU this host has; anything else never reaches libtorch.</summary>
    public static string ParseDevice(string device, string field)
    {
        if (device == "cpu") return device;
        var m = System.Text.RegularExpressions.Regex.Match(device, @"^cuda(?::(\d{1,3}))?$");
        if (!m.Success) throw StitchingException.InvalidArgument(field, $"'{Check.Shorten(device)}' is not a device; use cpu, cuda or cuda:N (empty = the host's Stitching:Device).");
        if (!TorchSharp.torch.cuda.is_available())
            throw StitchingException.FailedPrecondition($"{field}: this host has no CUDA device; use cpu or leave device empty.", field);
        var index = m.Groups[1].Success ? int.Parse(m.Groups[1].Value) : 0;
        var count = TorchSharp.torch.cuda.device_count();
        if (index >= count) throw StitchingException.InvalidArgument(field, $"cuda:{index} does not exist; this host has cuda:0..cuda:{count - 1}.");
        return device;
    }

    /// <summary>Loads (or finds loaded) and leases a model; dispose the lease when done.</summary>
    public async Task<LoadedModel.Lease> AcquireAsync(ModelSpec? spec, bool allowDownload, CancellationToken ct)
    {
        if (spec is null || string.IsNullOrEmpty(spec.Model))
            throw StitchingException.InvalidArgument("model.model", "is empty; give a model-store name, a checkpoint folder or a Hugging Face repo id (see ListModels).");
        var dtype = ParseDType(spec.Dtype);
        var device = DeviceOf(spec);
        var entry = await catalog.ResolveAsync(spec.Model, allowDownload, ct);
        var key = $"{entry.Path}|{DTypeName(dtype)}|{device}";
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var lazy = _loaded.GetOrAdd(key, _ => new Lazy<Task<LoadedModel>>(() => LoadAsync(entry, dtype, device, CancellationToken.None)));
            LoadedModel model;
            try { model = await lazy.Value; }
            catch { _loaded.TryRemove(new KeyValuePair<string, Lazy<Task<LoadedModel>>>(key, lazy)); throw; }
            var lease = model.Acquire();
            if (lease.Model is not null) return lease;
            _loaded.TryRemove(new KeyValuePair<string, Lazy<Task<LoadedModel>>>(key, lazy)); // unloaded meanwhile: load again
        }
        throw StitchingException.FailedPrecondition($"model '{spec.Model}' was unloaded repeatedly while loading; try again.", "model");
    }

    private async Task<LoadedModel> LoadAsync(CatalogEntry entry, ScalarType dtype, string device, CancellationToken ct)
    {
        var tokenizerPath = Path.Combine(entry.Path, "tokenizer.json");
        var tokenizer = File.Exists(tokenizerPath) ? HfTokenizer.Load(tokenizerPath) : null;
        var started = DateTime.UtcNow;
        var model = await worker.RunAsync(() => ModelFamilies.Load(entry.Path, dtype, device), ct);
        log.LogInformation("loaded {Model} ({Family}, {Layers} layers, d={Width}, {Params:N0} parameters, {DType}, {Device}) in {Seconds:F1} s",
            entry.Name, model.Family, model.Layers, model.Width, model.ParameterCount, DTypeName(dtype), device, (DateTime.UtcNow - started).TotalSeconds);
        var loaded = new LoadedModel(entry, model, tokenizer, Fingerprint(entry.Path), DTypeName(dtype), device);
        EvictBeyondLimit();
        return loaded;
    }

    private void EvictBeyondLimit()
    {
        var max = Math.Max(1, options.Value.MaxLoadedModels);
        foreach (var (key, lazy) in _loaded.Where(p => p.Value.IsValueCreated && p.Value.Value.IsCompletedSuccessfully)
                     .OrderByDescending(p => p.Value.Value.Result.LastUsed).Skip(max).ToList())
        {
            if (_loaded.TryRemove(new KeyValuePair<string, Lazy<Task<LoadedModel>>>(key, lazy)))
            {
                log.LogInformation("unloading {Model}: more than {Max} models loaded", lazy.Value.Result.Entry.Name, max);
                lazy.Value.Result.Retire();
            }
        }
    }

    public async Task<bool> UnloadAsync(ModelSpec spec, CancellationToken ct)
    {
        var entry = await catalog.ResolveAsync(spec.Model, allowDownload: false, ct);
        var key = $"{entry.Path}|{DTypeName(ParseDType(spec.Dtype))}|{DeviceOf(spec)}";
        if (!_loaded.TryRemove(key, out var lazy) || !lazy.IsValueCreated) return false;
        var model = await lazy.Value;
        model.Retire();
        return true;
    }

    /// <summary>Shape, hooks and tokenizer facts from config.json / tokenizer.json; marks it loaded when it is.</summary>
    public async Task<ModelInfo> DescribeAsync(ModelSpec spec, CancellationToken ct)
    {
        var entry = await catalog.ResolveAsync(spec.Model, allowDownload: false, ct);
        var info = Describe(entry);
        var key = $"{entry.Path}|{DTypeName(ParseDType(spec.Dtype))}|{DeviceOf(spec)}";
        return _loaded.TryGetValue(key, out var lazy) && lazy.IsValueCreated && lazy.Value.IsCompletedSuccessfully ? lazy.Value.Result.Info(info) : info;
    }

    public static ModelInfo Describe(CatalogEntry entry)
    {
        using var ck = Checkpoint.Open(entry.Path);
        var shape = ModelShape.Of(ck);
        var info = new ModelInfo
        {
            Name = entry.Name, Path = entry.Path, Source = entry.Source, Family = shape.Family, Layers = shape.Layers,
            Width = shape.Width, VocabSize = shape.VocabSize, MaxPositions = shape.MaxPositions ?? 0, Parameters = shape.Parameters,
            Fingerprint = Fingerprint(entry.Path), BosId = -1, EosId = -1,
        };
        info.Hooks.AddRange(shape.Hooks());
        var tokenizerPath = Path.Combine(entry.Path, "tokenizer.json");
        if (File.Exists(tokenizerPath))
        {
            var tokenizer = HfTokenizer.Load(tokenizerPath);
            info.BosId = tokenizer.BosId ?? -1;
            info.EosId = tokenizer.EosId ?? -1;
            info.AddsBos = tokenizer.BosId is { } bos && tokenizer.Encode("a").Ids.FirstOrDefault(-1) == bos;
        }
        return info;
    }

    /// <summary>
    /// sha256 of config.json, tokenizer.json and each weight file's name, size, modification time and
    /// safetensors header: cheap, and changes whenever the weights are rewritten.
    /// </summary>
    public static string Fingerprint(string directory) => Fingerprints.GetOrAdd(
        string.Join("|", Directory.EnumerateFiles(directory).Order(StringComparer.Ordinal).Select(f => $"{f}:{new FileInfo(f).Length}:{File.GetLastWriteTimeUtc(f).Ticks}")),
        _ =>
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            foreach (var name in new[] { "config.json", "tokenizer.json" })
            {
                var p = Path.Combine(directory, name);
                if (File.Exists(p)) sha.AppendData(File.ReadAllBytes(p));
            }
            var len = new byte[8];
            foreach (var file in Directory.EnumerateFiles(directory, "*.safetensors").Order(StringComparer.Ordinal))
            {
                var info = new FileInfo(file);
                sha.AppendData(System.Text.Encoding.UTF8.GetBytes($"{info.Name}:{info.Length}:{info.LastWriteTimeUtc.Ticks}:"));
                using var s = File.OpenRead(file);
                s.ReadExactly(len);
                var header = new byte[Math.Min(BitConverter.ToInt64(len), 100L << 20)];
                s.ReadExactly(header);
                sha.AppendData(header);
            }
            return Convert.ToHexStringLower(sha.GetHashAndReset())[..16];
        });

    public void Dispose()
    {
        foreach (var lazy in _loaded.Values)
            if (lazy.IsValueCreated && lazy.Value.IsCompletedSuccessfully) lazy.Value.Result.Retire();
        _loaded.Clear();
    }
}
