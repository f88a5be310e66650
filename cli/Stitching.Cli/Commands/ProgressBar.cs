using Grpc.Core;
using Stitching.Contracts.Common.V1;

namespace Stitching.Cli.Commands;

/// <summary>
/// Follows an operation to its end, drawing a one-line progress bar with ETA on stderr (redrawn in place
/// on a terminal, a line every few seconds otherwise). Returns the final record.
/// </summary>
public static class ProgressBar
{
    public static async Task<Operation> FollowAsync(ServerConnection c, Operation started, CancellationToken ct)
    {
        var client = new OperationsService.OperationsServiceClient(c.Channel);
        using var call = client.WatchOperation(new WatchOperationRequest { Id = started.Id }, cancellationToken: ct);
        var last = started;
        var lastPrint = DateTime.MinValue;
        var terminal = !Console.IsErrorRedirected;
        await foreach (var op in call.ResponseStream.ReadAllAsync(ct))
        {
            last = op;
            if (!terminal && DateTime.UtcNow - lastPrint < TimeSpan.FromSeconds(5) && op.State is OperationState.Running or OperationState.Pending) continue;
            lastPrint = DateTime.UtcNow;
            var line = Render(op);
            if (terminal) Console.Error.Write("\r" + line.PadRight(Math.Max(line.Length, Console.WindowWidth - 1))[..Math.Max(1, Console.WindowWidth - 1)]);
            else Console.Error.WriteLine(line);
        }
        if (terminal) Console.Error.WriteLine();
        return last;
    }

    public static string Render(Operation op)
    {
        var p = op.Progress ?? new OperationProgress();
        var fraction = p.TotalSteps > 0 ? Math.Clamp((double)p.Step / p.TotalSteps, 0, 1) : 0;
        const int width = 24;
        var filled = (int)Math.Round(fraction * width);
        var bar = p.TotalSteps > 0 ? $"[{new string('#', filled)}{new string('.', width - filled)}] {fraction * 100,3:F0}%" : "";
        var eta = p.EtaSeconds > 0 ? $" eta {TimeSpan.FromSeconds(Math.Round(p.EtaSeconds)):g}" : "";
        var rate = p.Metrics.TryGetValue("tokens_per_second", out var tps) ? $" {tps:F0} tok/s" : "";
        return $"{op.State.ToString().ToLowerInvariant(),-9} {p.Phase} {bar}{eta}{rate}".TrimEnd();
    }
}
