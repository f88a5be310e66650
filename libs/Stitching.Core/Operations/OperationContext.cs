using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Stitching.Contracts.Common.V1;

namespace Stitching.Core.Operations;

/// <summary>What a running job sees of its operation: its spec, and ways to report progress and results.</summary>
public sealed class OperationContext
{
    private readonly OperationRunner _runner;
    private readonly DateTime _startedAt = DateTime.UtcNow;

    internal OperationContext(OperationRunner runner, string id, string kind, Any? spec, int attempt)
    {
        _runner = runner;
        Id = id;
        Kind = kind;
        Spec = spec;
        Attempt = attempt;
    }

    public string Id { get; }
    public string Kind { get; }
    public Any? Spec { get; }
    /// <summary>1 for the first run; larger when resumed after a host restart.</summary>
    public int Attempt { get; }

    public T SpecAs<T>() where T : IMessage, new() =>
        Spec is not null && Spec.Is(new T().Descriptor) ? Spec.Unpack<T>() : new T();

    /// <summary>Publishes progress; the ETA is filled from step / total_steps when not given.</summary>
    public void Report(OperationProgress progress)
    {
        if (progress.EtaSeconds == 0 && progress.TotalSteps > 0 && progress.Step > 0)
        {
            var elapsed = (DateTime.UtcNow - _startedAt).TotalSeconds;
            progress.EtaSeconds = elapsed / progress.Step * Math.Max(0, progress.TotalSteps - progress.Step);
        }
        _runner.UpdateProgress(Id, progress);
    }

    public void AddOutput(ArtifactRef artifact) => _runner.AddOutput(Id, artifact);

    public void SetResult(IMessage result) => _runner.SetResult(Id, Any.Pack(result));
}
