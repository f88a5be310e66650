using System.Threading.Channels;
using TorchSharp;

namespace Stitching.Core.Compute;

/// <summary>
/// One dedicated thread per device runs all torch work. TorchSharp's dispose scopes and no_grad are
/// thread-bound, so work must never hop threads across an await; callers hand closures to this worker
/// and await the result instead. Each item runs inside its own dispose scope and, best effort, with the
/// garbage collector held off (<see cref="NoGcRegion"/>).
/// </summary>
public sealed class TorchWorker : IDisposable
{
    private readonly Channel<Action> _queue = Channel.CreateUnbounded<Action>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Thread _thread;

    static TorchWorker() => TorchEnvironment.Apply();

    public TorchWorker(string device = "cpu", int? threads = null)
    {
        Device = torch.device(device);
        if (threads is > 0) torch.set_num_threads(threads.Value);
        _thread = new Thread(Loop) { IsBackground = true, Name = $"torch-{device}" };
        _thread.Start();
    }

    public torch.Device Device { get; }

    public Task<T> RunAsync<T>(Func<T> work, CancellationToken ct = default)
    {
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var registration = ct.Register(() => tcs.TrySetCanceled(ct));
        var queued = _queue.Writer.TryWrite(() =>
        {
            registration.Dispose();
            if (ct.IsCancellationRequested) { tcs.TrySetCanceled(ct); return; }
            try
            {
                using var noGc = NoGcRegion.Enter(); // see NoGcRegion: no GC while native calls read temporaries
                using var scope = torch.NewDisposeScope();
                tcs.TrySetResult(work());
            }
            catch (Exception e)
            {
                tcs.TrySetException(e);
            }
        });
        if (!queued) tcs.TrySetException(new ObjectDisposedException(nameof(TorchWorker)));
        return tcs.Task;
    }

    private void Loop()
    {
        var reader = _queue.Reader;
        while (reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
            while (reader.TryRead(out var item)) item();
    }

    public void Dispose() => _queue.Writer.TryComplete();
}
