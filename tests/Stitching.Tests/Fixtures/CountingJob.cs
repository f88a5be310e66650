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
