namespace Stitching.Sae.Data;

/// <summary>SplitMix64 (Steele, Lea, Flood 2014): a tiny generator whose whole state is one ulong.</summary>
public static class SplitMix64
{
    public static ulong Next(ref ulong state)
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>A standard normal draw (Box-Muller on two uniforms in (0, 1]).</summary>
    public static double NextNormal(ref ulong state)
    {
        var u1 = ((Next(ref state) >> 11) + 1) * (1.0 / (1UL << 53));
        var u2 = (Next(ref state) >> 11) * (1.0 / (1UL << 53));
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
