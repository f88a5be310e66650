using System.CommandLine;
using Grpc.Core;
using Stitching.Contracts.Common.V1;

namespace Stitching.Cli.Commands;

/// <summary>stitch ops list|get|watch|cancel: long-running operations.</summary>
public static class OpsCommand
{
    public static Command Create()
    {
        var kind = new Option<string?>("--kind") { Description = "Only operations of this kind." };
        var limit = new Option<int>("--limit") { Description = "At most this many, newest first.", DefaultValueFactory = _ => 20 };
        var list = new Command("list", "List operations, newest first.") { kind, limit };
        list.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var ops = await Client(c).ListOperationsAsync(new ListOperationsRequest { Kind = parse.GetValue(kind) ?? "", Limit = parse.GetValue(limit) }, cancellationToken: ct);
            CliOutput.Print(parse, ops, () =>
            {
                if (ops.Operations.Count == 0) Console.WriteLine("no operations");
                foreach (var op in ops.Operations) Console.WriteLine(Line(op));
            });
            return 0;
        }));

        var id = new Argument<string>("id") { Description = "Operation id (from ops list)." };
        var get = new Command("get", "Show one operation.") { id };
        get.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var op = await Client(c).GetOperationAsync(new GetOperationRequest { Id = parse.GetValue(id)! }, cancellationToken: ct);
            CliOutput.Print(parse, op, () => Console.WriteLine(Line(op)));
            return 0;
        }));

        var watch = new Command("watch", "Follow an operation until it ends (a progress bar with ETA on stderr), then print its final state.") { id };
        watch.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var started = await Client(c).GetOperationAsync(new GetOperationRequest { Id = parse.GetValue(id)! }, cancellationToken: ct);
            var last = await ProgressBar.FollowAsync(c, started, ct);
            CliOutput.Print(parse, last, () => Console.WriteLine(Line(last)));
            return last.State == OperationState.Succeeded ? 0 : 1;
        }));

        var cancel = new Command("cancel", "Ask an operation to stop.") { id };
        cancel.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var op = await Client(c).CancelOperationAsync(new CancelOperationRequest { Id = parse.GetValue(id)! }, cancellationToken: ct);
            CliOutput.Print(parse, op, () => Console.WriteLine(Line(op)));
            return 0;
        }));

        return new Command("ops", "Long-running operations: list, get, watch, cancel.") { list, get, watch, cancel };
    }

    private static OperationsService.OperationsServiceClient Client(ServerConnection c) => new(c.Channel);

    public static string Line(Operation op)
    {
        var p = op.Progress ?? new OperationProgress();
        var state = op.State.ToString().ToUpperInvariant();
        var progress = p.TotalSteps > 0 ? $" step {p.Step}/{p.TotalSteps} ({100.0 * p.Step / p.TotalSteps:F0}%)" : p.Step > 0 ? $" step {p.Step}" : "";
        var eta = p.EtaSeconds > 0 ? $" eta {TimeSpan.FromSeconds(Math.Round(p.EtaSeconds))}" : "";
        var error = op.Error is not null ? $" {op.Error.Code}: {op.Error.Message}" : "";
        var metrics = string.Concat(p.Metrics.Select(m => $" {m.Key}={m.Value:G4}"));
        return $"{op.Id}  {op.Kind,-24} {state,-10}{progress}{eta}{metrics}{(string.IsNullOrEmpty(p.Message) ? "" : " " + p.Message)}{error}";
    }
}
