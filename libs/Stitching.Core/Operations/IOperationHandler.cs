namespace Stitching.Core.Operations;

/// <summary>
/// Runs one kind of long job ("activations.extract", "sae.train", ...). Register handlers in DI; the
/// runner finds them by <see cref="Kind"/>. A handler that can resume from its own checkpoints says so
/// with <see cref="Resumable"/>: after a host restart its interrupted jobs run again (attempt + 1);
/// others are marked failed with a message that says to start them again.
/// </summary>
public interface IOperationHandler
{
    string Kind { get; }
    bool Resumable => false;
    /// <summary>
    /// True for jobs that only start and follow other operations (experiments): they wait for their own slots
    /// (Stitching:MaxConcurrentExperiments), not for the compute slots their stages need, so they cannot starve them.
    /// </summary>
    bool Orchestrates => false;
    Task ExecuteAsync(OperationContext context, CancellationToken cancellationToken);
}
