using System.Diagnostics;
using Stitching.Contracts.Common.V1;

namespace Stitching.Cli.Commands;

/// <summary>
/// One bar on stderr for the points of a sweep running at once: the sum of each point's experiment fraction.
/// The ETA counts only work done in this run (skipped points took no time): remaining x elapsed / done here.
/// Points report from several tasks, so every call takes the lock.
/// </summary>
internal sealed class SweepProgress(int points)
{
    private readonly ProgressBar _bar = new(Console.Error);
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly double[] _fraction = new double[points];
    private readonly bool[] _skipped = new bool[points];
    private readonly Lock _gate = new();
    private int _ended;

    public void Skipped(int point)
    {
        lock (_gate) { _skipped[point] = true; End(point); }
    }

    public void Update(int point, Operation op)
    {
        if (op.Progress is not { TotalSteps: > 0 } p) return;
        lock (_gate)
        {
            _fraction[point] = Math.Clamp((double)p.Step / p.TotalSteps, _fraction[point], 0.999);
            Draw();
        }
    }

    /// <summary>A point that finished or failed: nothing of it is left to run.</summary>
    public void Ended(int point)
    {
        lock (_gate) End(point);
    }

    /// <summary>A line above the bar; <paramref name="to"/> is stdout for a person's result lines.</summary>
    public void Note(string line, TextWriter to)
    {
        lock (_gate) _bar.Note(line, to);
    }

    public void Finish()
    {
        lock (_gate) _bar.Finish();
    }

    private void End(int point)
    {
        _fraction[point] = 1;
        _ended++;
        Draw();
    }

    private void Draw()
    {
        var done = _fraction.Sum();
        var ranHere = _fraction.Where((_, i) => !_skipped[i]).Sum();
        double? eta = ranHere > 0.01 ? (points - done) * _clock.Elapsed.TotalSeconds / ranHere : null;
        _bar.Update(done / points, $"{_ended} of {points} points", eta);
    }
}
