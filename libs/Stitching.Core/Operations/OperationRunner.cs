using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Stitching.Core.Errors;
using Stitching.Contracts.Common.V1;

namespace Stitching.Core.Operations;

/// <summary>
/// Starts, tracks, cancels and persists operations. Records live in memory while a job runs and on
/// disk always (every state change, and progress at most once a second), so Get/List/Watch answer for
/// finished jobs after a restart too. On start-up, jobs of this host's kinds that a previous process left
/// unfinished are resumed when their handler is resumable, else marked FAILED with a message saying so.
/// </summary>
public sealed class OperationRunner : IHostedLifecycleService, IDisposable
{
    private static readonly ActivitySource Source = new("Stitching.Operations");
    private readonly Dictionary<string, IOperationHandler> _handlers;
    private readonly OperationRecords _records;
    private readonly ILogger<OperationRunner> _log;
    private readonly ConcurrentDictionary<string, Live> _live = new();
    private readonly SemaphoreSlim _slots, _orchestratorSlots;
    private readonly CancellationTokenSource _shutdown = new();

    private readonly int _maxPending;

    public OperationRunner(IEnumerable<IOperationHandler> handlers, OperationRecords records, ILogger<OperationRunner> log, int maxConcurrent = 2, int maxPending = 64, int maxOrchestrating = 4)
    {
        _orchestratorSlots = new SemaphoreSlim(Math.Max(1, maxOrchestrating));
        _maxPending = Math.Max(1, maxPending);
        _handlers = handlers.ToDictionary(h => h.Kind);
        _records = records;
        _log = log;
        _slots = new SemaphoreSlim(Math.Max(1, maxConcurrent));
    }

    public IReadOnlyCollection<string> Kinds => _handlers.Keys;

    public Operation Start(string kind, Any? spec)
    {
        if (!_handlers.TryGetValue(kind ?? "", out var handler))
            throw StitchingException.InvalidArgument("kind",
                $"'{kind}' is not a job kind this host runs; known kinds: {(Kinds.Count == 0 ? "none" : string.Join(", ", Kinds.Order()))}.");
        var pending = _live.Values.Count(l => l.Record.State == OperationState.Pending);
        if (pending >= _maxPending)
            throw StitchingException.ResourceExhausted($"{pending} operations are already waiting to run on this host (Stitching:MaxPendingOperations = {_maxPending}); try again when some have finished.", "kind");
        var now = Timestamp.FromDateTime(DateTime.UtcNow);
        var op = new Operation
        {
            Id = $"op-{DateTime.UtcNow:yyyyMMddHHmmss}-{Guid.NewGuid().ToString("N")[..8]}",
            Kind = kind,
            State = OperationState.Pending,
            CreatedAt = now,
            UpdatedAt = now,
            Spec = spec,
            Progress = new OperationProgress(),
        };
        Launch(handler, op);
        return op.Clone();
    }

    public Operation Get(string id)
    {
        if (_live.TryGetValue(id, out var live)) return live.Snapshot();
        return _records.Load(id) ?? throw NotFound(id);
    }

    public IReadOnlyList<Operation> List(string? kind, OperationState state, int limit)
    {
        var byId = _records.LoadAll().ToDictionary(o => o.Id);
        foreach (var live in _live.Values) { var s = live.Snapshot(); byId[s.Id] = s; }
        return byId.Values
            .Where(o => string.IsNullOrEmpty(kind) || o.Kind == kind)
            .Where(o => state == OperationState.Unspecified || o.State == state)
            .OrderByDescending(o => o.CreatedAt?.ToDateTime() ?? DateTime.MinValue)
            .Take(limit <= 0 ? 100 : limit)
            .ToList();
    }

    public Operation Cancel(string id)
    {
        if (!_live.TryGetValue(id, out var live)) return Get(id); // already final (or unknown -> NOT_FOUND)
        lock (live)
        {
            if (!IsFinal(live.Record.State))
            {
                live.Record.State = OperationState.Cancelling;
                Touch(live.Record);
            }
        }
        live.Cancellation.Cancel();
        Persist(live, force: true);
        return live.Snapshot();
    }

    /// <summary>Yields the current record, then every change, ending after the final state.</summary>
    public async IAsyncEnumerable<Operation> WatchAsync(string id, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        if (!_live.TryGetValue(id, out var live))
        {
            yield return Get(id);
            yield break;
        }
        var channel = Channel.CreateBounded<Operation>(new BoundedChannelOptions(64) { FullMode = BoundedChannelFullMode.DropOldest });
        lock (live) live.Watchers.Add(channel);
        try
        {
            var first = live.Snapshot();
            yield return first;
            if (IsFinal(first.State)) yield break;
            await foreach (var op in channel.Reader.ReadAllAsync(ct))
            {
                yield return op;
                if (IsFinal(op.State)) yield break;
            }
        }
        finally
        {
            lock (live) live.Watchers.Remove(channel);
        }
    }

    public static bool IsFinal(OperationState s) =>
        s is OperationState.Succeeded or OperationState.Failed or OperationState.Cancelled;

    internal void UpdateProgress(string id, OperationProgress progress) => Mutate(id, op => op.Progress = progress, force: false);
    internal void AddOutput(string id, ArtifactRef artifact) => Mutate(id, op => op.Outputs.Add(artifact), force: true);
    internal void SetResult(string id, Any result) => Mutate(id, op => op.Result = result, force: true);

    private void Launch(IOperationHandler handler, Operation op)
    {
        var live = new Live(op, CancellationTokenSource.CreateLinkedTokenSource(_shutdown.Token)) { Parent = Activity.Current?.Context ?? default };
        _live[op.Id] = live;
        Persist(live, force: true);
        live.Task = Task.Run(() => RunAsync(handler, live));
    }

    private async Task RunAsync(IOperationHandler handler, Live live)
    {
        var ct = live.Cancellation.Token;
        var id = live.Record.Id;
        try
        {
            var slots = handler.Orchestrates ? _orchestratorSlots : _slots;
            await slots.WaitAsync(ct);
            try
            {
                int attempt;
                Any? spec;
                lock (live)
                {
                    live.Record.State = OperationState.Running;
                    live.Record.StartedAt = Timestamp.FromDateTime(DateTime.UtcNow);
                    live.Record.Attempt += 1;
                    attempt = live.Record.Attempt;
                    spec = live.Record.Spec;
                    Touch(live.Record);
                }
                Persist(live, force: true);
                _log.LogInformation("Operation {Id} ({Kind}) running, attempt {Attempt}", id, handler.Kind, attempt);
                // One span per run of a job; handlers add child spans per phase and FLOPs via StitchingTelemetry.
                // Its parent is the request that started it (the StartOperation/Extract/... RPC), so a client's trace
                // holds the work it asked for; a job resumed after a restart starts a trace of its own.
                using var activity = Source.StartActivity($"operation {handler.Kind}", ActivityKind.Internal, live.Parent);
                activity?.SetTag(Telemetry.StitchingTelemetry.OperationAttribute, id);
                activity?.SetTag("stitching.attempt", attempt);
                await handler.ExecuteAsync(new OperationContext(this, id, handler.Kind, spec, attempt), ct);
                Finish(live, OperationState.Succeeded, null);
            }
            finally
            {
                slots.Release();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            if (_shutdown.IsCancellationRequested && live.Record.State != OperationState.Cancelling)
            {
                // Host shutting down: leave the record RUNNING/PENDING so the next start resumes or fails it.
                _live.TryRemove(id, out _);
                return;
            }
            Finish(live, OperationState.Cancelled, null);
        }
        catch (Exception e) when (_shutdown.IsCancellationRequested && live.Record.State != OperationState.Cancelling)
        {
            // Interrupted by the shutdown (e.g. the torch worker was disposed under it): same as above.
            _log.LogInformation("Operation {Id} interrupted by shutdown ({Error}); the next start resumes or fails it", id, e.GetType().Name);
            _live.TryRemove(id, out _);
        }
        catch (Exception e)
        {
            var error = e is StitchingException se
                ? new OperationError { Code = CodeName(se.Kind), Message = se.Message }
                : new OperationError { Code = "INTERNAL", Message = $"{e.GetType().Name}: {e.Message}" };
            _log.LogError(e, "Operation {Id} failed", id);
            Finish(live, OperationState.Failed, error);
        }
    }

    private void Finish(Live live, OperationState state, OperationError? error)
    {
        lock (live)
        {
            live.Record.State = state;
            live.Record.Error = error;
            live.Record.FinishedAt = Timestamp.FromDateTime(DateTime.UtcNow);
            Touch(live.Record);
        }
        Persist(live, force: true);
        Publish(live);
        _live.TryRemove(live.Record.Id, out _);
        live.Cancellation.Dispose();
    }

    private void Mutate(string id, Action<Operation> change, bool force)
    {
        if (!_live.TryGetValue(id, out var live)) return;
        lock (live)
        {
            change(live.Record);
            Touch(live.Record);
        }
        Persist(live, force);
        Publish(live);
    }

    private void Persist(Live live, bool force)
    {
        Operation copy;
        lock (live)
        {
            var now = Environment.TickCount64;
            if (!force && now - live.LastPersistTicks < 1000) return;
            live.LastPersistTicks = now;
            copy = live.Record.Clone();
        }
        lock (live.PersistLock)
        {
            // Only ever move forward: an older snapshot must not overwrite a newer one.
            if (copy.UpdatedAt is not null && live.PersistedAt is not null && copy.UpdatedAt < live.PersistedAt) return;
            _records.Save(copy);
            live.PersistedAt = copy.UpdatedAt;
        }
    }

    private static void Publish(Live live)
    {
        Channel<Operation>[] watchers;
        Operation snapshot;
        lock (live)
        {
            watchers = live.Watchers.ToArray();
            snapshot = live.Record.Clone();
        }
        foreach (var w in watchers) w.Writer.TryWrite(snapshot);
    }

    private static void Touch(Operation op) => op.UpdatedAt = Timestamp.FromDateTime(DateTime.UtcNow);

    private static StitchingException NotFound(string id) =>
        StitchingException.NotFound($"operation '{id}' does not exist; list operations to see known ids.", "id");

    private static string CodeName(ErrorKind kind) => kind switch
    {
        ErrorKind.InvalidArgument => "INVALID_ARGUMENT",
        ErrorKind.NotFound => "NOT_FOUND",
        ErrorKind.AlreadyExists => "ALREADY_EXISTS",
        ErrorKind.FailedPrecondition => "FAILED_PRECONDITION",
        ErrorKind.ResourceExhausted => "RESOURCE_EXHAUSTED",
        ErrorKind.Unavailable => "UNAVAILABLE",
        ErrorKind.Cancelled => "CANCELLED",
        ErrorKind.DataLoss => "DATA_LOSS",
        ErrorKind.PermissionDenied => "PERMISSION_DENIED",
        _ => "INTERNAL",
    };

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Resumes (or fails) what a previous process left unfinished once every hosted service has started, the gRPC
    /// server included: a resumed orchestrator (an experiment) calls this host's own services at once, and before
    /// Kestrel listens those calls would be refused. Until then its record reads as it was left (RUNNING), which
    /// is what a watcher or a resubmission that joins it expects.
    /// </summary>
    public Task StartedAsync(CancellationToken cancellationToken)
    {
        // Only kinds this host runs: in Kubernetes the services share one store, and another service's
        // running jobs are not ours to resume or fail.
        foreach (var op in _records.LoadAll().Where(o => !IsFinal(o.State) && _handlers.ContainsKey(o.Kind)))
        {
            var handler = _handlers[op.Kind];
            if (handler.Resumable && op.State != OperationState.Cancelling)
            {
                _log.LogInformation("Resuming operation {Id} ({Kind}) left unfinished by a previous run", op.Id, op.Kind);
                op.State = OperationState.Pending;
                Launch(handler, op);
            }
            else
            {
                op.State = op.State == OperationState.Cancelling ? OperationState.Cancelled : OperationState.Failed;
                if (op.State == OperationState.Failed)
                    op.Error = new OperationError { Code = "ABORTED", Message = "The host restarted while this operation ran and its kind cannot resume; start it again." };
                op.FinishedAt = Timestamp.FromDateTime(DateTime.UtcNow);
                Touch(op);
                _records.Save(op);
            }
        }
        return Task.CompletedTask;
    }

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Cancels running jobs and waits (within the host's shutdown timeout) until they have stopped.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _shutdown.Cancel();
        var running = _live.Values.Select(l => l.Task).OfType<Task>().ToArray();
        try { await Task.WhenAll(running).WaitAsync(cancellationToken); }
        catch (OperationCanceledException) { _log.LogWarning("{Count} operations still running at shutdown", running.Count(t => !t.IsCompleted)); }
    }

    public void Dispose() => _shutdown.Dispose();

    private sealed class Live(Operation record, CancellationTokenSource cancellation)
    {
        public Operation Record { get; } = record;
        public Task? Task { get; set; }
        public CancellationTokenSource Cancellation { get; } = cancellation;
        /// <summary>The trace context of the request that started the job (default when resumed at start-up).</summary>
        public ActivityContext Parent { get; init; }
        public List<Channel<Operation>> Watchers { get; } = [];
        public long LastPersistTicks;
        public Timestamp? PersistedAt;
        public object PersistLock { get; } = new();
        public Operation Snapshot() { lock (this) return Record.Clone(); }
    }
}
