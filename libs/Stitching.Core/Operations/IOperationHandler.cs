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
    Task ExecuteAsync(OperationContext context, CancellationToken cancellationToken);
}
