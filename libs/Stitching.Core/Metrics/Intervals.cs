namespace Stitching.Core.Metrics;

/// <summary>
/// 95% (or any level) confidence intervals of a binomial proportion k / n, the single definition every
/// report uses (docs/metrics.md "Intervals"). Both return (0, 0) for n = 0.
/// </summary>
public static class Intervals
{
    /// <summary>The two-sided normal quantile of a 95% interval.</summary>
    public const double Z95 = 1.959963984540054;

    /// <summary>
    /// Wilson score interval: (p + z^2/2n -/+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n) with p = k/n.
    /// Used for probe accuracies (large n, p near 1).
    /// </summary>
    public static (double Low, double High) Wilson(long k, long n, double z = Z95)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(k, n);
        if (n == 0) return (0, 0);
        double p = (double)k / n, z2 = z * z;
        var centre = p + z2 / (2.0 * n);
        var half = z * Math.Sqrt(p * (1 - p) / n + z2 / (4.0 * n * n));
        var scale = 1 + z2 / n;
        return (Math.Max(0, (centre - half) / scale), Math.Min(1, (centre + half) / scale));
    }

    /// <summary>
    /// Clopper-Pearson (exact) interval at level 1 - alpha: the low end solves P(X >= k | n, p) = alpha/2
    /// (0 when k = 0), the high end P(X <= k | n, p) = alpha/2 (1 when k = n); equivalently the alpha/2 and
    /// 1 - alpha/2 quantiles of Beta(k, n-k+1) and Beta(k+1, n-k). Solved by bisection on the binomial tail,
    /// computed from the regularized incomplete beta function. Used for steering success rates (small n).
    /// </summary>
    public static (double Low, double High) ClopperPearson(long k, long n, double alpha = 0.05)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(k, n);
        if (n == 0) return (0, 0);
        // P(X >= k) = I_p(k, n-k+1) rises with p; P(X <= k) = 1 - I_p(k+1, n-k) falls with p.
        var low = k == 0 ? 0 : Bisect(p => RegularizedBeta(p, k, n - k + 1) - alpha / 2, rising: true);
        var high = k == n ? 1 : Bisect(p => 1 - RegularizedBeta(p, k + 1, n - k) - alpha / 2, rising: false);
        return (low, high);
    }

    private static double Bisect(Func<double, double> f, bool rising)
    {
        double lo = 0, hi = 1;
        for (var i = 0; i < 200 && hi - lo > 1e-15; i++)
        {
            var mid = 0.5 * (lo + hi);
            var v = f(mid);
            if (v > 0 == rising) hi = mid; else lo = mid;
        }
        return 0.5 * (lo + hi);
    }

    /// <summary>I_x(a, b), the regularized incomplete beta function (continued fraction, Numerical Recipes 6.4).</summary>
    public static double RegularizedBeta(double x, double a, double b)
    {
        if (x <= 0) return 0;
        if (x >= 1) return 1;
        var lnFront = LogGamma(a + b) - LogGamma(a) - LogGamma(b) + a * Math.Log(x) + b * Math.Log(1 - x);
        return x < (a + 1) / (a + b + 2)
            ? Math.Exp(lnFront) * BetaFraction(x, a, b) / a
            : 1 - Math.Exp(lnFront) * BetaFraction(1 - x, b, a) / b;
    }

    private static double BetaFraction(double x, double a, double b)
    {
        const double tiny = 1e-300;
        double qab = a + b, qap = a + 1, qam = a - 1, c = 1, d = 1 - qab * x / qap;
        if (Math.Abs(d) < tiny) d = tiny;
        d = 1 / d;
        var h = d;
        for (var m = 1; m <= 10_000; m++)
        {
            var m2 = 2 * m;
            var aa = m * (b - m) * x / ((qam + m2) * (a + m2));
            d = 1 + aa * d; if (Math.Abs(d) < tiny) d = tiny;
            c = 1 + aa / c; if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d; h *= d * c;
            aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
            d = 1 + aa * d; if (Math.Abs(d) < tiny) d = tiny;
            c = 1 + aa / c; if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d;
            var del = d * c;
            h *= del;
            if (Math.Abs(del - 1) < 1e-15) break;
        }
        return h;
    }

    /// <summary>ln Gamma(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error below 1e-15).</summary>
    public static double LogGamma(double x)
    {
        if (x < 0.5) return Math.Log(Math.PI / Math.Abs(Math.Sin(Math.PI * x))) - LogGamma(1 - x);
        ReadOnlySpan<double> g =
        [
            0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
            12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
        ];
        x -= 1;
        var sum = g[0];
        for (var i = 1; i < 9; i++) sum += g[i] / (x + i);
        var t = x + 7.5;
        return 0.5 * Math.Log(2 * Math.PI) + (x + 0.5) * Math.Log(t) - t + Math.Log(sum);
    }
}
