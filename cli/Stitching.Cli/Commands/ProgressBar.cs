using System.Diagnostics;
using Grpc.Core;
using Stitching.Contracts.Common.V1;

namespace Stitching.Cli.Commands;

/// <summary>
/// A one-line progress bar with ETA (elapsed x remaining / done) on a terminal; when the stream is
/// redirected it prints a line per 5% instead, so logs stay readable. <see cref="FollowAsync"/> drives
/// one from an operation's progress.
/// </summary>
public sealed class ProgressBar(TextWriter output)
{
    private const int Width = 30;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly bool _interactive = !Console.IsErrorRedirected;
    private TimeSpan _lastDraw = TimeSpan.MinValue;
    private int _lastBucket = -1;

    public void Update(double fraction, string detail, double? etaSeconds = null)
    {
        fraction = Math.Clamp(fraction, 0, 1);
        var elapsed = _clock.Elapsed;
        var eta = etaSeconds is > 0 ? Format(TimeSpan.FromSeconds(etaSeconds.Value))
            : fraction > 0.01 ? Format(elapsed * ((1 - fraction) / fraction)) : "?";
        var filled = (int)(fraction * Width);
        var line = $"[{new string('#', filled)}{new string('.', Width - filled)}] {fraction,4:P0} {Format(elapsed)} elapsed, ETA {eta}  {detail}";
        if (_interactive)
        {
            if (elapsed - _lastDraw < TimeSpan.FromMilliseconds(200) && fraction < 1) return;
            _lastDraw = elapsed;
            output.Write($"\r{line,-110}");
        }
        else if ((int)(fraction * 20) is var bucket && bucket != _lastBucket)
        {
            _lastBucket = bucket;
            output.WriteLine(line);
        }
    }

    /// <summary>A line of its own above the bar, on the bar's stream or on <paramref name="to"/> (stdout: a result line).</summary>
    public void Note(string line, TextWriter? to = null)
    {
        if (_interactive) output.Write($"\r{"",-110}\r");
        (to ?? output).WriteLine(line);
        _lastDraw = TimeSpan.MinValue;
    }

    public void Finish()
    {
        if (_interactive) output.WriteLine();
        output.WriteLine($"finished in {Format(_clock.Elapsed)}");
    }

    /// <summary>
    /// Waits for a call that reports no progress (a load on a --server) with its elapsed time on stderr, as there
    /// is no ETA to show: redrawn on a terminal; when redirected, a line after 10 s and each minute after (a quick call prints nothing).
    /// </summary>
    public static async Task<T> WaitAsync<T>(string what, Task<T> call, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var next = TimeSpan.FromSeconds(10);
        while (await Task.WhenAny(call, Task.Delay(250, ct)) != call)
        {
            if (!Console.IsErrorRedirected) Console.Error.Write($"\r{what}: {Format(clock.Elapsed)} elapsed");
            else if (clock.Elapsed >= next) { Console.Error.WriteLine($"{what}: {Format(clock.Elapsed)} elapsed"); next += TimeSpan.FromMinutes(1); }
        }
        if (!Console.IsErrorRedirected && clock.Elapsed > TimeSpan.FromMilliseconds(250)) Console.Error.Write($"\r{"",-110}\r");
        return await call;
    }

    private static string Format(TimeSpan t) => t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:D2}m" : $"{t.Minutes}m{t.Seconds:D2}s";

    /// <summary>Follows an operation to its end with a bar on stderr (phase, tokens/s); returns the final record.</summary>
    /// <param name="stages">An experiment: print a line per stage as it starts (with the stage's own progress on the bar).</param>
    public static async Task<Operation> FollowAsync(ServerConnection c, Operation started, CancellationToken ct, bool stages = false)
    {
        var stage = "";
        var bar = new ProgressBar(Console.Error);
        using var call = new OperationsService.OperationsServiceClient(c.Channel).WatchOperation(new WatchOperationRequest { Id = started.Id }, cancellationToken: ct);
        var last = started;
        await foreach (var op in call.ResponseStream.ReadAllAsync(ct))
        {
            last = op;
            var p = op.Progress ?? new OperationProgress();
            if (stages && p.Message.Length > 0 && p.Message != stage)
            {
                stage = p.Message;
                bar.Note($"{p.Message}{(p.Phase.EndsWith(": reused", StringComparison.Ordinal) ? " (reused)" : "")}");
            }
            var rate = p.Metrics.TryGetValue("tokens_per_second", out var tps) ? $" {tps:F0} tok/s" : "";
            bar.Update(op.State == OperationState.Succeeded ? 1 : p.TotalSteps > 0 ? (double)p.Step / p.TotalSteps : 0, $"{p.Phase}{rate}", p.EtaSeconds);
        }
        bar.Finish();
        return last;
    }
}
