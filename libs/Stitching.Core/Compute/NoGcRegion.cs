using System.Runtime;

namespace Stitching.Core.Compute;

/// <summary>
/// Runs a burst of TorchSharp calls with the garbage collector held off. TorchSharp 0.107 creates
/// temporary Scalars for implicit conversions and default arguments (the alpha of a + b, 2.0 in x * 2.0)
/// and leaves them to the finalizer; when a GC lands while a native call still reads such a Scalar, the
/// finalizer frees it under the call ("Unknown scalar type", garbage scalars; dotnet/TorchSharp#1434,
/// #1496). Hot loops (SAE training steps) wrap each step in this region: the GC runs before the step
/// instead of during it. Best effort: if the budget is exceeded the runtime collects anyway. Entering first
/// lets <see cref="NativeMemory.Relieve"/> collect when native memory left to finalizers has grown.
/// </summary>
public readonly struct NoGcRegion : IDisposable
{
    private readonly bool _started;

    private NoGcRegion(bool started) => _started = started;

    public const long DefaultBudgetBytes = 64L << 20;

    public static NoGcRegion Enter(long budgetBytes = DefaultBudgetBytes)
    {
        NativeMemory.Relieve();
        try { return new NoGcRegion(GCSettings.LatencyMode != GCLatencyMode.NoGCRegion && GC.TryStartNoGCRegion(budgetBytes)); }
        catch (InvalidOperationException) { return new NoGcRegion(false); }
        catch (ArgumentOutOfRangeException) { return new NoGcRegion(false); }
    }

    public void Dispose()
    {
        if (!_started || GCSettings.LatencyMode != GCLatencyMode.NoGCRegion) return;
        try { GC.EndNoGCRegion(); }
        catch (InvalidOperationException) { } // a GC happened anyway (budget exceeded): nothing to end
    }
}
