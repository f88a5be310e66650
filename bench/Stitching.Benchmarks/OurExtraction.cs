using Stitching.Core.Tensors;
using Stitching.Models;
using Stitching.Models.Families;
using Stitching.Models.Runtime;
using static TorchSharp.torch;

namespace Stitching.Benchmarks;

/// <summary>Times our runtime reading blocks.{L}.hook_resid_pre (so blocks 0..L-1 run) and keeps the value read.</summary>
public static class OurExtraction
{
    /// <summary>The timing and the captured activations [B, T, d] of the last forward, as host tensor "ours".</summary>
    public sealed record Result(Timing Timing, HostTensor Captured, long ParameterCount);

    public static Result Run(string checkpointDir, Tensor ids, BenchOptions o, ScalarType dtype = ScalarType.Float32)
    {
        using var model = ModelFamilies.Load(checkpointDir, dtype, "cpu");
        var request = new ForwardRequest { Ids = ids, Capture = [new HookPoint(HookSite.ResidPre, o.LayersRead)] };
        var timing = Timing.Measure(() =>
        {
            using var scope = NewDisposeScope();
            model.Forward(request);
        }, o.Warmup, o.Repeat);
        using var last = NewDisposeScope();
        var captured = model.Forward(request).Captured[request.Capture.Single()].to(ScalarType.Float32);
        return new Result(timing, TorchTensors.ToHost(captured, "ours"), model.ParameterCount);
    }
}
