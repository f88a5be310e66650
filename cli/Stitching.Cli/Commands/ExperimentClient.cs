using Grpc.Core;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Eval.V1;
using Stitching.Reports;

namespace Stitching.Cli.Commands;

/// <summary>Client side of an experiment: submit, follow its stages with a progress bar, download its report artifact.</summary>
public static class ExperimentClient
{
    /// <summary>Runs (or joins) the experiment and returns its result; a failed experiment is an RpcException with the stage's error.</summary>
    /// <param name="progress">A line per stage and a bar on stderr; false (sweeps, several at once) follows silently, handing each update to <paramref name="update"/>.</param>
    public static async Task<ExperimentResult> RunAsync(ServerConnection c, ExperimentSpec spec, CancellationToken ct, bool progress = true, Action<Operation>? update = null)
    {
        var client = new ExperimentsService.ExperimentsServiceClient(c.Channel);
        var op = await client.RunExperimentAsync(new RunExperimentRequest { Spec = spec }, cancellationToken: ct);
        if (progress) Console.Error.WriteLine($"experiment {op.Id} ({spec.Name}): {ExperimentStageCount(op)}");
        var done = progress ? await ProgressBar.FollowAsync(c, op, ct, stages: true) : await FollowQuietlyAsync(c, op, update, ct);
        if (done.State != OperationState.Succeeded)
            throw new RpcException(new Status(done.Error?.Code == "INVALID_ARGUMENT" ? StatusCode.InvalidArgument : StatusCode.FailedPrecondition,
                $"experiment {done.Id} ended {done.State}: {done.Error?.Message}"));
        return done.Result.Unpack<ExperimentResult>();
    }

    private static async Task<Operation> FollowQuietlyAsync(ServerConnection c, Operation op, Action<Operation>? update, CancellationToken ct)
    {
        using var call = new OperationsService.OperationsServiceClient(c.Channel).WatchOperation(new WatchOperationRequest { Id = op.Id }, cancellationToken: ct);
        var last = op;
        await foreach (var o in call.ResponseStream.ReadAllAsync(ct)) update?.Invoke(last = o);
        return last;
    }

    private static string ExperimentStageCount(Operation op) => op.State == OperationState.Running ? "joined the running experiment" : "started";

    /// <summary>Downloads a report artifact and writes it as PATH.md, PATH.json, PATH.html and PATH-figures/*.png.</summary>
    public static async Task<(ReportFiles Files, string Markdown)> DownloadReportAsync(ServerConnection c, ArtifactRef report, string markdownPath, CancellationToken ct)
    {
        var artifacts = new ArtifactsService.ArtifactsServiceClient(c.Channel);
        var manifest = await artifacts.GetArtifactAsync(new GetArtifactRequest { Ref = report }, cancellationToken: ct);
        async Task<byte[]> Read(string file)
        {
            using var call = artifacts.ReadFile(new ReadFileRequest { Ref = report, File = file }, cancellationToken: ct);
            using var buffer = new MemoryStream();
            await foreach (var chunk in call.ResponseStream.ReadAllAsync(ct)) chunk.Data.WriteTo(buffer);
            return buffer.ToArray();
        }
        string Text(byte[] b) => System.Text.Encoding.UTF8.GetString(b);
        var markdown = Text(await Read("report.md"));
        var figures = new List<Figure>();
        foreach (var f in manifest.Files.Where(f => f.Name.StartsWith("figure-", StringComparison.Ordinal) && f.Name.EndsWith(".png", StringComparison.Ordinal)))
            figures.Add(new Figure("", f.Name["figure-".Length..^".png".Length], "", await Read(f.Name)));
        var rendered = new RenderedReport(Text(await Read("report.json")), Text(await Read("report.html")), figures, manifest.Metadata.GetValueOrDefault("figures_skipped"));
        return (ReportWriter.Write(markdownPath, markdown, rendered), markdown);
    }
}
