using Google.Protobuf.WellKnownTypes;
using Stitching.Core.Operations;
using Stitching.Contracts.Common.V1;

namespace Stitching.Tests.Fixtures;

/// <summary>
/// Test-only job: counts to spec.fields["steps"] with spec.fields["delay_ms"] between steps, reporting
/// each step. It computes a checksum (sum of squares of the steps) as its result, which tests verify.
/// </summary>
public class CountingJob : IOperationHandler
{
    public virtual string Kind => "test.count";

    public async Task ExecuteAsync(OperationContext context, CancellationToken cancellationToken)
    {
        var spec = context.SpecAs<Struct>();
        var steps = (long)spec.Fields["steps"].NumberValue;
        var delay = (int)spec.Fields["delay_ms"].NumberValue;
        double sum = 0;
        for (long i = 1; i <= steps; i++)
        {
            await Task.Delay(delay, cancellationToken);
            sum += (double)i * i;
            var progress = new OperationProgress { Step = i, TotalSteps = steps, Phase = "counting" };
            progress.Metrics["sum_squares"] = sum;
            context.Report(progress);
        }
        context.SetResult(new Struct { Fields = { ["sum_squares"] = Value.ForNumber(sum), ["attempt"] = Value.ForNumber(context.Attempt) } });
    }

    public static Any Spec(long steps, int delayMs) =>
        Any.Pack(new Struct { Fields = { ["steps"] = Value.ForNumber(steps), ["delay_ms"] = Value.ForNumber(delayMs) } });
}

/// <summary>Same job, declared resumable: after a host restart it runs again.</summary>
public sealed class ResumableCountingJob : CountingJob, IOperationHandler
{
    public override string Kind => "test.count-resumable";
    bool IOperationHandler.Resumable => true;
}

/// <summary>
/// Test-only resumable job that, once resumed after a restart (attempt 2), makes one gRPC call to its own host
/// without retrying: it succeeds only when the host's server is listening by the time resumed jobs run, as a
/// resumed experiment needs (it calls the other services in the same process at once).
/// </summary>
public sealed class CallsItsServerJob(Microsoft.AspNetCore.Hosting.Server.IServer server) : IOperationHandler
{
    public string Kind => "test.call-own-server";
    public bool Resumable => true;

    public async Task ExecuteAsync(OperationContext context, CancellationToken cancellationToken)
    {
        if (context.Attempt == 1)
        {
            context.Report(new OperationProgress { Phase = "waiting for the restart" });
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        var addresses = server.Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()?.Addresses ?? [];
        var address = addresses.FirstOrDefault(a => !a.EndsWith(":0", StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"the server has no bound address yet ({string.Join(", ", addresses)})");
        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(address.Replace("0.0.0.0", "127.0.0.1").Replace("[::]", "127.0.0.1"));
        var reply = await new Grpc.Health.V1.Health.HealthClient(channel).CheckAsync(new Grpc.Health.V1.HealthCheckRequest(), cancellationToken: cancellationToken);
        context.SetResult(new Struct { Fields = { ["health"] = Value.ForString(reply.Status.ToString()), ["attempt"] = Value.ForNumber(context.Attempt) } });
    }
}
