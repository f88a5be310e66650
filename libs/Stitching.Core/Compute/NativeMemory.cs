using System.Runtime;

namespace Stitching.Core.Compute;

/// <summary>
/// Keeps the process's resident memory bounded when torch tensors are left to finalizers. The garbage
/// collector sees only managed bytes, so a tensor handle that escapes a dispose scope costs it a few dozen
/// bytes while it holds megabytes of native memory, and nothing prompts a collection. TorchSharp 0.107's own
/// optimizer step does this (measured: 2 MB of native memory per Adam step of the stitch fit at batch 4096,
/// 3.4 GB over the main job's 2,000 steps, freed only by a collection), and torch work runs in
/// <see cref="NoGcRegion"/>s that hold collections off. <see cref="Relieve"/>, called at the torch thread's safe
/// points (between items and steps), collects and runs the finalizers when resident memory has grown by
/// <see cref="ThresholdBytes"/> since the last collection, so the garbage is freed before the next step.
/// </summary>
public static class NativeMemory
{
    private static long _residentAfterCollect;
    private static long _collections;

    /// <summary>Growth of resident memory since the last collection that triggers the next (default 256 MiB).</summary>
    public static long ThresholdBytes { get; set; } = 256L << 20;

    /// <summary>Collections <see cref="Relieve"/> has made in this process.</summary>
    public static long Collections => Interlocked.Read(ref _collections);

    /// <summary>This process's resident set in bytes (/proc/self/statm; 0 where there is none).</summary>
    public static long ResidentBytes()
    {
        try
        {
            var fields = File.ReadAllText("/proc/self/statm").Split(' ');
            return long.Parse(fields[1]) * Environment.SystemPageSize;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return 0;
        }
    }

    /// <summary>Peak resident set of this process so far in bytes (VmHWM of /proc/self/status; 0 where there is none).</summary>
    public static long PeakResidentBytes()
    {
        try
        {
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return 0;
        }
    }

    /// <summary>
    /// Collects (compacting the large-object heap once) and waits for finalizers when resident memory grew by
    /// the threshold since the last collection; true when it collected. Call on the torch thread between
    /// steps, never while another thread runs torch calls: finalizers then free only what earlier steps left.
    /// An open <see cref="NoGcRegion"/> is ended for the collection and reopened after it.
    /// </summary>
    public static bool Relieve()
    {
        var resident = ResidentBytes();
        var after = Interlocked.Read(ref _residentAfterCollect);
        if (resident < after) Interlocked.Exchange(ref _residentAfterCollect, resident); // memory went back (a model unloaded): grow from here
        if (resident == 0 || resident - after < ThresholdBytes) return false;
        var inRegion = GCSettings.LatencyMode == GCLatencyMode.NoGCRegion;
        if (inRegion)
            try { GC.EndNoGCRegion(); }
            catch (InvalidOperationException) { inRegion = false; }
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Interlocked.Increment(ref _collections);
        Interlocked.Exchange(ref _residentAfterCollect, ResidentBytes());
        if (inRegion)
            try { GC.TryStartNoGCRegion(NoGcRegion.DefaultBudgetBytes); }
            catch (InvalidOperationException) { }
        return true;
    }
}
