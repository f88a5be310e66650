namespace Stitching.Stitch.Data;

/// <summary>
/// The held-out split: a TokenSet row is held out when a fixed hash of its index falls below the
/// fraction, so the split is deterministic, the same for every method, and whole rows (contexts) stay
/// on one side.
/// </summary>
public static class RowSplit
{
    public static bool IsHeldOut(long row, double fraction)
    {
        if (fraction <= 0) return false;
        var h = (ulong)row * 0x9E3779B97F4A7C15UL;
        h ^= h >> 31;
        h *= 0xBF58476D1CE4E5B9UL;
        h ^= h >> 29;
        return (h >> 11) / (double)(1UL << 53) < fraction;
    }
}
