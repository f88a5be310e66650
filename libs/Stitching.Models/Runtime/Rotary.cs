using System.Text.Json;
using Stitching.Core.Errors;
using TorchSharp;
using static TorchSharp.torch;

namespace Stitching.Models.Runtime;

/// <summary>
/// Rotary position embedding in the rotate-half layout Hugging Face uses for GPT-NeoX, Llama, Qwen2 and
/// Gemma: inv_freq_i = theta^(-2i/r) over the first r dims of each head (r = head_dim * rotary_pct),
/// angles pos * inv_freq duplicated as [f, f], x_rot' = x_rot cos + rotate_half(x_rot) sin, where
/// rotate_half([a, b]) = [-b, a]; the remaining head dims pass through. cos/sin are computed in float32
/// and cast to the activations' dtype. Supports rope_scaling types default and llama3.
/// </summary>
public sealed class Rotary
{
    private readonly double[] _invFreq;

    public Rotary(int rotaryDims, double theta, JsonElement? scaling = null)
    {
        if (rotaryDims % 2 != 0)
            throw StitchingException.FailedPrecondition($"rotary dimension {rotaryDims} must be even.", "model");
        Dims = rotaryDims;
        _invFreq = Enumerable.Range(0, rotaryDims / 2).Select(i => 1.0 / Math.Pow(theta, 2.0 * i / rotaryDims)).ToArray();
        if (scaling is { ValueKind: JsonValueKind.Object } s) ApplyScaling(s);
    }

    public int Dims { get; }

    private void ApplyScaling(JsonElement s)
    {
        var type = s.TryGetProperty("rope_type", out var rt) ? rt.GetString() : s.TryGetProperty("type", out var t) ? t.GetString() : "default";
        switch (type)
        {
            case "default": return;
            case "llama3":
            {
                double factor = s.GetProperty("factor").GetDouble(), low = s.GetProperty("low_freq_factor").GetDouble(),
                       high = s.GetProperty("high_freq_factor").GetDouble(), original = s.GetProperty("original_max_position_embeddings").GetDouble();
                double lowWavelen = original / low, highWavelen = original / high;
                for (var i = 0; i < _invFreq.Length; i++)
                {
                    var f = _invFreq[i];
                    var wavelen = 2 * Math.PI / f;
                    if (wavelen > lowWavelen) _invFreq[i] = f / factor;
                    else if (wavelen >= highWavelen)
                    {
                        var smooth = (original / wavelen - low) / (high - low);
                        _invFreq[i] = (1 - smooth) * f / factor + smooth * f;
                    }
                }
                return;
            }
            default:
                throw StitchingException.FailedPrecondition($"rope_scaling type '{type}' is not supported; supported: default, llama3.", "model");
        }
    }

    /// <summary>cos and sin tables [T, r] for positions offset..offset+T-1.</summary>
    public (Tensor Cos, Tensor Sin) Tables(long t, ScalarType dtype, Device device, int offset = 0)
    {
        var inv = tensor(_invFreq.Select(v => (float)v).ToArray(), device: device);
        var freqs = arange(offset, offset + t, dtype: ScalarType.Float32, device: device).unsqueeze(1) * inv.unsqueeze(0);
        var emb = cat([freqs, freqs], -1);
        return (emb.cos().to(dtype), emb.sin().to(dtype));
    }

    /// <summary>Rotates the first r dims of every head of x [B, H, T, hd].</summary>
    public Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        var hd = x.shape[^1];
        var rot = Dims == hd ? x : x[.., .., .., ..Dims];
        var halves = rot.chunk(2, -1);
        var rotated = rot * cos + cat([-halves[1], halves[0]], -1) * sin;
        return Dims == hd ? rotated : cat([rotated, x[.., .., .., Dims..]], -1);
    }
}
