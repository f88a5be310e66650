using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Stitching.Contracts.Common.V1;
using Stitching.Tests.Fixtures;

namespace Stitching.Tests.Integration;

/// <summary>The operations API over real gRPC: start, watch, cancel, list, and records across a host restart.</summary>
[Trait("Category", "Integration")]
public class OperationsTests
{
    private static OperationsService.OperationsServiceClient Client(TestServer s) => new(s.Channel);

    private static async Task<List<Operation>> WatchAllAsync(TestServer s, string id)
    {
        using var call = Client(s).WatchOperation(new WatchOperationRequest { Id = id });
        var seen = new List<Operation>();
        await foreach (var op in call.ResponseStream.ReadAllAsync()) seen.Add(op);
        return seen;
    }

    [Fact]
    public async Task Started_operation_streams_progress_and_succeeds_with_its_result()
    {
        await using var server = await TestServer.StartAsync(redis: false);
        var op = await Client(server).StartOperationAsync(new StartOperationRequest { Kind = "test.count", Spec = CountingJob.Spec(steps: 8, delayMs: 30) });
        Assert.True(op.State is OperationState.Pending or OperationState.Running);

        var seen = await WatchAllAsync(server, op.Id);
        var last = seen[^1];
        Assert.Equal(OperationState.Succeeded, last.State);
        Assert.Equal(8, last.Progress.Step);
        Assert.True(seen.Count >= 3, $"expected several progress updates, got {seen.Count}");
        Assert.True(seen.Select(o => o.Progress?.Step ?? 0).SequenceEqual(seen.Select(o => o.Progress?.Step ?? 0).Order()), "steps must not go backwards");
        // 1^2 + ... + 8^2 = 8*9*17/6
        Assert.Equal(8 * 9 * 17 / 6.0, last.Result.Unpack<Struct>().Fields["sum_squares"].NumberValue);

        var listed = await Client(server).ListOperationsAsync(new ListOperationsRequest { Kind = "test.count" });
        Assert.Contains(listed.Operations, o => o.Id == op.Id && o.State == OperationState.Succeeded);
    }

    [Fact]
    public async Task Cancel_stops_a_running_operation()
    {
        await using var server = await TestServer.StartAsync(redis: false);
        var op = await Client(server).StartOperationAsync(new StartOperationRequest { Kind = "test.count", Spec = CountingJob.Spec(steps: 1000, delayMs: 20) });
        using var call = Client(server).WatchOperation(new WatchOperationRequest { Id = op.Id });
        var states = new List<Operation>();
        await foreach (var o in call.ResponseStream.ReadAllAsync())
        {
            states.Add(o);
            if (o.Progress?.Step == 3) await Client(server).CancelOperationAsync(new CancelOperationRequest { Id = op.Id });
        }
        var final = states[^1];
        Assert.Equal(OperationState.Cancelled, final.State);
        Assert.InRange(final.Progress.Step, 3, 999);
        Assert.Equal(OperationState.Cancelled, (await Client(server).GetOperationAsync(new GetOperationRequest { Id = op.Id })).State);
    }

    [Fact]
    public async Task Bad_requests_get_clear_statuses()
    {
        await using var server = await TestServer.StartAsync(redis: false);
        var unknownKind = await Assert.ThrowsAsync<RpcException>(async () => await Client(server).StartOperationAsync(new StartOperationRequest { Kind = "no.such" }));
        Assert.Equal(StatusCode.InvalidArgument, unknownKind.StatusCode);
        Assert.Contains("test.count", unknownKind.Status.Detail);
        var missing = await Assert.ThrowsAsync<RpcException>(async () => await Client(server).GetOperationAsync(new GetOperationRequest { Id = "op-missing" }));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        var badId = await Assert.ThrowsAsync<RpcException>(async () => await Client(server).GetOperationAsync(new GetOperationRequest { Id = "../../etc" }));
        Assert.Equal(StatusCode.InvalidArgument, badId.StatusCode);
        Assert.NotNull(badId.Trailers.GetValueBytes("grpc-status-details-bin"));
    }

    [Fact]
    public async Task Records_survive_a_host_restart_and_interrupted_jobs_resume_or_fail_clearly()
    {
        using var store = new TempDir("stitching-restart");
        string done, interrupted, resumable;
        await using (var first = await TestServer.StartAsync(store.Path, redis: false))
        {
            done = (await Client(first).StartOperationAsync(new StartOperationRequest { Kind = "test.count", Spec = CountingJob.Spec(4, 10) })).Id;
            Assert.Equal(OperationState.Succeeded, (await WatchAllAsync(first, done))[^1].State);
            interrupted = (await Client(first).StartOperationAsync(new StartOperationRequest { Kind = "test.count", Spec = CountingJob.Spec(100_000, 20) })).Id;
            resumable = (await Client(first).StartOperationAsync(new StartOperationRequest { Kind = "test.count-resumable", Spec = CountingJob.Spec(100_000, 20) })).Id;
            await WaitForStepAsync(first, interrupted, 2);
            await WaitForStepAsync(first, resumable, 2);
        } // host stops with both still running

        await using var second = await TestServer.StartAsync(store.Path, redis: false);
        var doneAfter = await Client(second).GetOperationAsync(new GetOperationRequest { Id = done });
        Assert.Equal(OperationState.Succeeded, doneAfter.State);
        Assert.Equal(4, doneAfter.Progress.Step);
        Assert.Equal(30.0, doneAfter.Result.Unpack<Struct>().Fields["sum_squares"].NumberValue);

        var failed = await Client(second).GetOperationAsync(new GetOperationRequest { Id = interrupted });
        Assert.Equal(OperationState.Failed, failed.State);
        Assert.Contains("restarted", failed.Error.Message);

        var resumed = await Client(second).GetOperationAsync(new GetOperationRequest { Id = resumable });
        Assert.Equal(2, resumed.Attempt);
        Assert.True(resumed.State is OperationState.Pending or OperationState.Running);
        await Client(second).CancelOperationAsync(new CancelOperationRequest { Id = resumable });
        Assert.Equal(OperationState.Cancelled, (await WatchAllAsync(second, resumable))[^1].State);
    }

    [Fact]
    public async Task A_job_resumed_after_a_restart_runs_once_its_host_serves_gRPC()
    {
        // A resumed experiment calls the services of its own process at once; resuming before Kestrel listened made
        // that call fail now and then (CI, 2026-12-02), and the experiment with it.
        using var store = new TempDir("stitching-resume-serving");
        string id;
        await using (var first = await TestServer.StartAsync(store.Path, redis: false))
        {
            id = (await Client(first).StartOperationAsync(new StartOperationRequest { Kind = "test.call-own-server", Spec = Any.Pack(new Empty()) })).Id;
            for (var i = 0; i < 200 && (await Client(first).GetOperationAsync(new GetOperationRequest { Id = id })).State != OperationState.Running; i++) await Task.Delay(50);
        }
        await using var second = await TestServer.StartAsync(store.Path, redis: false);
        var final = (await WatchAllAsync(second, id))[^1];
        Assert.True(final.State == OperationState.Succeeded, $"{final.State}: {final.Error}");
        Assert.Equal(2, final.Result.Unpack<Struct>().Fields["attempt"].NumberValue);
    }

    [Fact]
    public async Task A_host_leaves_unfinished_jobs_of_kinds_it_does_not_run_alone()
    {
        // In Kubernetes all services share one store; restarting one must not fail another's jobs.
        using var store = new TempDir("stitching-shared");
        string running;
        await using (var owner = await TestServer.StartAsync(store.Path, redis: false))
        {
            running = (await Client(owner).StartOperationAsync(new StartOperationRequest { Kind = "test.count", Spec = CountingJob.Spec(100_000, 20) })).Id;
            await WaitForStepAsync(owner, running, 1);
        }
        await using (var other = await TestServer.StartAsync(store.Path, redis: false, testJobs: false))
            Assert.Equal(OperationState.Running, (await Client(other).GetOperationAsync(new GetOperationRequest { Id = running })).State);
        await using var ownerAgain = await TestServer.StartAsync(store.Path, redis: false);
        Assert.Equal(OperationState.Failed, (await Client(ownerAgain).GetOperationAsync(new GetOperationRequest { Id = running })).State);
    }

    private static async Task WaitForStepAsync(TestServer s, string id, long step)
    {
        for (var i = 0; i < 200; i++)
        {
            var op = await Client(s).GetOperationAsync(new GetOperationRequest { Id = id });
            if (op.Progress?.Step >= step) return;
            await Task.Delay(25);
        }
        Assert.Fail($"operation {id} never reached step {step}");
    }
}
