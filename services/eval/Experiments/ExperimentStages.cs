using System.Diagnostics;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Eval.V1;
using Stitching.Core.Errors;
using Stitching.Core.Operations;
using Stitching.Hosting.Clients;

namespace Stitching.Eval.Experiments;

/// <summary>
/// Runs an experiment's stages through the services' gRPC APIs, each under its content key in the
/// <see cref="StageLedger"/>: a stage with a SUCCEEDED record is reused; one RUNNING with a live operation is
/// followed rather than started again (after a restart its service resumes it); otherwise it runs and its record is
/// written when it ends. Progress goes to the experiment's operation: stage name, stages done of all, the stage's own
/// ETA, and FLOPs so far.
/// </summary>
public sealed class ExperimentStages(ServiceChannels channels, StageLedger ledger, OperationContext context, int totalStages, CancellationToken ct)
{
    private readonly List<StageRecord> _records = [];
    private const int Scale = 1000;

    public IReadOnlyList<StageRecord> Records => _records;
    public int Total { get; set; } = totalStages;
    public double Flops => _records.Sum(r => r.Flops);

    public GrpcChannel Channel(string service) => channels.For(service);

    /// <summary>A stage that is one long operation on <paramref name="service"/>, started by <paramref name="start"/>.</summary>
    public Task<T> OperationAsync<T>(string name, string service, IMessage inputs, Func<GrpcChannel, Task<Operation>> start,
        Func<T, Operation, Task<double>>? flops = null) where T : IMessage, new() => Named(name, service, () => RunOperationAsync(name, service, inputs, start, flops));

    /// <summary>A service's error answer becomes the experiment's, with its status kept and the stage named.</summary>
    private static async Task<T> Named<T>(string name, string service, Func<Task<T>> stage)
    {
        try { return await stage(); }
        catch (RpcException e) when (e.StatusCode is not (StatusCode.Cancelled or StatusCode.DeadlineExceeded))
        {
            var kind = e.StatusCode switch
            {
                StatusCode.InvalidArgument => ErrorKind.InvalidArgument, StatusCode.NotFound => ErrorKind.NotFound, StatusCode.AlreadyExists => ErrorKind.AlreadyExists,
                StatusCode.FailedPrecondition => ErrorKind.FailedPrecondition, StatusCode.ResourceExhausted => ErrorKind.ResourceExhausted,
                StatusCode.PermissionDenied => ErrorKind.PermissionDenied, StatusCode.Unavailable => ErrorKind.Unavailable, StatusCode.DataLoss => ErrorKind.DataLoss,
                _ => ErrorKind.Internal,
            };
            throw new StitchingException(kind, $"stage {name} ({service} service): {e.Status.Detail}", null, e);
        }
    }

    private async Task<T> RunOperationAsync<T>(string name, string service, IMessage inputs, Func<GrpcChannel, Task<Operation>> start,
        Func<T, Operation, Task<double>>? flops) where T : IMessage, new()
    {
        var key = StageLedger.Key(name, inputs);
        var previous = ledger.Load(key);
        if (previous is { State: StageState.Succeeded }) return Reuse<T>(previous);
        var channel = channels.For(service);
        var ops = new OperationsService.OperationsServiceClient(channel);
        Operation? op = null;
        if (previous is { State: StageState.Running, OperationId.Length: > 0 } && previous.Service == service)
        {
            try
            {
                var existing = await WhileUnavailableAsync(() => ops.GetOperationAsync(new GetOperationRequest { Id = previous.OperationId }, cancellationToken: ct).ResponseAsync);
                if (existing.State is not (OperationState.Failed or OperationState.Cancelled)) op = existing; // live, resumed or done: follow it
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.NotFound) { }
        }
        if (op is null)
        {
            op = await WhileUnavailableAsync(() => start(channel));
            ledger.Save(new StageRecord { Name = name, Key = key, State = StageState.Running, Service = service, OperationId = op.Id });
        }
        var final = await FollowAsync(ops, op, name);
        if (final.State != OperationState.Succeeded)
            throw StitchingException.FailedPrecondition($"stage {name}: operation {final.Id} ({final.Kind}) on the {service} service ended {final.State}: " +
                $"{final.Error?.Code} {final.Error?.Message}. Fix the cause and submit the experiment again; finished stages are kept.", "spec");
        var result = final.Result.Unpack<T>();
        var record = new StageRecord
        {
            Name = name, Key = key, State = StageState.Succeeded, Service = service, OperationId = final.Id, Result = final.Result,
            Flops = flops is null ? final.Progress?.Flops ?? 0 : await flops(result, final),
            Seconds = final.StartedAt is not null && final.FinishedAt is not null ? (final.FinishedAt.ToDateTime() - final.StartedAt.ToDateTime()).TotalSeconds : 0,
            FinishedAt = Timestamp.FromDateTime(DateTime.UtcNow),
        };
        record.Artifacts.AddRange(final.Outputs);
        return Done(record, result);
    }

    /// <summary>A stage that is one unary call.</summary>
    public Task<T> CallAsync<T>(string name, string service, IMessage inputs, Func<GrpcChannel, Task<T>> call,
        Func<T, double>? flops = null, Func<T, IEnumerable<ArtifactRef>>? artifacts = null) where T : IMessage, new() =>
        Named(name, service, () => RunCallAsync(name, service, inputs, call, flops, artifacts));

    private async Task<T> RunCallAsync<T>(string name, string service, IMessage inputs, Func<GrpcChannel, Task<T>> call,
        Func<T, double>? flops, Func<T, IEnumerable<ArtifactRef>>? artifacts) where T : IMessage, new()
    {
        var key = StageLedger.Key(name, inputs);
        if (ledger.Load(key) is { State: StageState.Succeeded } previous) return Reuse<T>(previous);
        Report(name, "", 0, 0);
        var clock = Stopwatch.StartNew();
        var result = await WhileUnavailableAsync(() => call(channels.For(service)));
        var record = new StageRecord
        {
            Name = name, Key = key, State = StageState.Succeeded, Service = service, Result = Any.Pack(result),
            Flops = flops?.Invoke(result) ?? 0, Seconds = clock.Elapsed.TotalSeconds, FinishedAt = Timestamp.FromDateTime(DateTime.UtcNow),
        };
        if (artifacts is not null) record.Artifacts.AddRange(artifacts(result));
        return Done(record, result);
    }

    /// <summary>The report stage: the record is written by the caller once its artifact is stored.</summary>
    public StageRecord? Lookup(string name, IMessage inputs) => ledger.Load(StageLedger.Key(name, inputs)) is { State: StageState.Succeeded } r ? Reused(r) : null;

    public void Record(string name, IMessage inputs, ArtifactRef artifact, double seconds)
    {
        var record = new StageRecord
        {
            Name = name, Key = StageLedger.Key(name, inputs), State = StageState.Succeeded, Service = ServiceChannels.Eval,
            Seconds = seconds, FinishedAt = Timestamp.FromDateTime(DateTime.UtcNow), Artifacts = { artifact },
        };
        ledger.Save(record);
        Report(name, "done", 1, 0);
        _records.Add(record);
    }

    private T Reuse<T>(StageRecord previous) where T : IMessage, new()
    {
        Report(previous.Name, "reused", 1, 0);
        Reused(previous);
        return previous.Result.Unpack<T>();
    }

    private StageRecord Reused(StageRecord previous)
    {
        var copy = previous.Clone();
        copy.Reused = true;
        _records.Add(copy);
        return copy;
    }

    private T Done<T>(StageRecord record, T result)
    {
        ledger.Save(record);
        Report(record.Name, "done", 1, 0);
        _records.Add(record);
        return result;
    }

    /// <summary>Watches an operation to its final state; a dropped stream (the service restarting) is re-opened for up to two minutes.</summary>
    private async Task<Operation> FollowAsync(OperationsService.OperationsServiceClient ops, Operation op, string stage)
    {
        var last = op;
        var failures = 0;
        while (!OperationRunner.IsFinal(last.State))
        {
            try
            {
                using var call = ops.WatchOperation(new WatchOperationRequest { Id = op.Id }, cancellationToken: ct);
                await foreach (var update in call.ResponseStream.ReadAllAsync(ct))
                {
                    last = update;
                    failures = 0;
                    var p = update.Progress ?? new OperationProgress();
                    Report(stage, p.Phase, p.TotalSteps > 0 ? (double)p.Step / p.TotalSteps : 0, p.EtaSeconds, p);
                }
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.Internal or StatusCode.Unknown && ++failures <= 60 && !ct.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromSeconds(2), ct);
            }
            if (OperationRunner.IsFinal(last.State)) break;
            await Task.Delay(TimeSpan.FromMilliseconds(250), ct); // a record its host has not relaunched yet (just restarted) ends its watch at once
            last = await WhileUnavailableAsync(() => ops.GetOperationAsync(new GetOperationRequest { Id = op.Id }, cancellationToken: ct).ResponseAsync);
        }
        return last;
    }

    /// <summary>
    /// Retries a call while its service answers UNAVAILABLE (not listening yet after a restart, a pod being replaced),
    /// every 2 s for up to two minutes, as <see cref="FollowAsync"/> does for a dropped watch; other errors pass through.
    /// </summary>
    private async Task<T> WhileUnavailableAsync<T>(Func<Task<T>> call)
    {
        for (var failures = 0; ; failures++)
        {
            try { return await call(); }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && failures < UnavailableRetries && !ct.IsCancellationRequested)
            {
                await Task.Delay(UnavailableDelay, ct);
            }
        }
    }

    private const int UnavailableRetries = 60;
    private static readonly TimeSpan UnavailableDelay = TimeSpan.FromSeconds(2);

    private void Report(string stage, string phase, double fraction, double eta, OperationProgress? inner = null)
    {
        var progress = new OperationProgress
        {
            Phase = phase.Length > 0 ? $"{stage}: {phase}" : stage,
            Step = (long)((_records.Count + Math.Clamp(fraction, 0, 1)) * Scale), TotalSteps = Math.Max(Total, _records.Count + 1) * (long)Scale,
            Flops = Flops + (inner?.Flops ?? 0), Tokens = inner?.Tokens ?? 0,
            Message = $"stage {Math.Min(_records.Count + 1, Total)} of {Total}: {stage}",
        };
        if (inner is not null) foreach (var (k, v) in inner.Metrics) progress.Metrics[k] = v;
        progress.Metrics["stage_eta_seconds"] = eta;
        progress.Metrics["stages_done"] = _records.Count;
        progress.Metrics["stages_reused"] = _records.Count(r => r.Reused);
        context.Report(progress);
    }
}
