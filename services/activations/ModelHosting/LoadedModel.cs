using Stitching.Contracts.Activations.V1;
using Stitching.Core.Errors;
using Stitching.Models.Runtime;
using Stitching.Models.Tokenization;

namespace Stitching.Activations.ModelHosting;

/// <summary>
/// A model in memory with its tokenizer. Users hold a lease while they compute with it, so an unload
/// (or eviction) waits until the last lease ends before freeing the weights.
/// </summary>
public sealed class LoadedModel
{
    private int _leases;
    private bool _retired;
    private readonly object _gate = new();

    public LoadedModel(CatalogEntry entry, CausalLm model, HfTokenizer? tokenizer, string fingerprint, string dtype, string device)
    {
        Entry = entry;
        Model = model;
        Tokenizer = tokenizer;
        Fingerprint = fingerprint;
        DType = dtype;
        Device = device;
    }

    public CatalogEntry Entry { get; }
    public CausalLm Model { get; }
    /// <summary>The tokenizer, or null when the checkpoint has no tokenizer.json (token ids still work).</summary>
    public HfTokenizer? Tokenizer { get; }

    public HfTokenizer RequireTokenizer() => Tokenizer ?? throw StitchingException.FailedPrecondition(
        $"{Entry.Path} has no tokenizer.json, so this model only takes token ids; add the Hugging Face tokenizer.json beside config.json.", "model");
    public string Fingerprint { get; }
    public string DType { get; }
    public string Device { get; }
    public DateTime LastUsed { get; private set; } = DateTime.UtcNow;

    public Lease Acquire()
    {
        lock (_gate)
        {
            if (_retired) return new Lease(null);
            _leases++;
            LastUsed = DateTime.UtcNow;
            return new Lease(this);
        }
    }

    /// <summary>Frees the weights now, or when the last lease ends.</summary>
    public void Retire()
    {
        lock (_gate)
        {
            _retired = true;
            if (_leases == 0) Model.Dispose();
        }
    }

    private void Release()
    {
        lock (_gate)
        {
            if (--_leases == 0 && _retired) Model.Dispose();
        }
    }

    /// <summary>Keeps a model alive while in use; <see cref="Model"/> is null when it was unloaded meanwhile.</summary>
    public readonly struct Lease(LoadedModel? model) : IDisposable
    {
        public LoadedModel? Model { get; } = model;
        public void Dispose() => Model?.Release();
    }

    public ModelInfo Info(ModelInfo described)
    {
        var info = described.Clone();
        info.Loaded = true;
        info.Dtype = DType;
        info.Device = Device;
        return info;
    }
}
