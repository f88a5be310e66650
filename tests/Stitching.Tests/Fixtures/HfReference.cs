using System.Collections.Concurrent;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using TorchSharp;

namespace Stitching.Tests.Fixtures;

/// <summary>
/// Random Hugging Face checkpoints and their float64 numpy forward (tests/Stitching.Tests/Models/
/// Reference/hf_reference.py, an implementation independent of ours), generated once per family and
/// dtype per test run.
/// </summary>
public static class HfReference
{
    private static readonly ConcurrentDictionary<string, Lazy<string>> Generated = new();
    private static readonly TempDir Root = new("hf-reference");

    /// <summary>Folder with config.json, model.safetensors and reference.safetensors.</summary>
    public static string Checkpoint(string family, string dtype = "float32", string? prefix = null) =>
        Generated.GetOrAdd($"{family}|{dtype}|{prefix}", key => new Lazy<string>(() =>
        {
            var dir = Path.Combine(Root.Path, key.Replace('|', '-').Replace(".", ""));
            Directory.CreateDirectory(dir);
            var script = Path.Combine(Python.RepoRoot(), "tests", "Stitching.Tests", "Models", "Reference", "hf_reference.py");
            string[] args = prefix is null ? [script, family, dir, "--dtype", dtype] : [script, family, dir, "--dtype", dtype, "--prefix", prefix];
            Python.RunProgram(Python.Exe, args);
            return dir;
        })).Value;

    public static SafetensorsReader Reference(string checkpoint) => SafetensorsReader.Open(Path.Combine(checkpoint, "reference.safetensors"));

    /// <summary>A reference tensor as float64 torch (ids as int64).</summary>
    public static torch.Tensor Tensor(SafetensorsReader r, string name)
    {
        var t = r.Read(name);
        var result = torch.empty(t.Shape, t.DType == DType.I64 ? torch.ScalarType.Int64 : torch.ScalarType.Float64);
        if (t.DType is not (DType.I64 or DType.F64)) throw new InvalidOperationException($"{name}: expected F64 or I64, got {t.DType}");
        result.bytes = System.Runtime.InteropServices.MemoryMarshal.AsMemory(t.Data).Span;
        return result;
    }

    /// <summary>max |expected - actual| / max |expected|.</summary>
    public static double RelativeError(torch.Tensor expected, torch.Tensor actual)
    {
        var e = expected.to(torch.ScalarType.Float64);
        var a = actual.to(torch.ScalarType.Float64);
        Assert.Equal(e.shape, a.shape);
        return (e - a).abs().max().item<double>() / e.abs().max().item<double>();
    }
}
