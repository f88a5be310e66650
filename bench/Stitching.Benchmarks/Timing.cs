using System.Diagnostics;

namespace Stitching.Benchmarks;

/// <summary>Best and median wall time of repeated runs, in seconds.</summary>
public sealed record Timing(double Best, double Median, int Repeat)
{
    /// <summary>Runs <paramref name="work"/> <paramref name="warmup"/> times untimed, then <paramref name="repeat"/> times timed.</summary>
    public static Timing Measure(Action work, int warmup, int repeat)
    {
        for (var i = 0; i < warmup; i++) work();
        var seconds = new double[Math.Max(1, repeat)];
        for (var i = 0; i < seconds.Length; i++)
        {
            var sw = Stopwatch.StartNew();
            work();
            seconds[i] = sw.Elapsed.TotalSeconds;
        }
        Array.Sort(seconds);
        var mid = seconds.Length / 2;
        var median = seconds.Length % 2 == 1 ? seconds[mid] : (seconds[mid - 1] + seconds[mid]) / 2;
        return new Timing(seconds[0], median, seconds.Length);
    }
}
