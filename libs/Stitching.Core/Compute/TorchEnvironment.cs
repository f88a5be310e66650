using System.Runtime.InteropServices;

namespace Stitching.Core.Compute;

/// <summary>
/// Native settings libtorch reads from the process environment, applied before the first tensor exists.
/// THP_MEM_ALLOC_ENABLE=1 makes libtorch's CPU allocator ask for transparent huge pages (madvise) on large
/// tensors: a fresh 50 MB tensor then faults 25 pages instead of 12,800. Where THP is "madvise" (Debian's
/// default), allocation-bound steps run about twice as fast (measured on the SAE step's gathers, scatters and
/// Adam, bench/README.md); matmul rates are unchanged. .NET's Environment.SetEnvironmentVariable does not reach
/// the native environment on Linux, so this calls libc's setenv; a value the user exported wins.
/// </summary>
public static class TorchEnvironment
{
    private static int _applied;

    public static readonly IReadOnlyDictionary<string, string> Defaults = new Dictionary<string, string>
    {
        ["THP_MEM_ALLOC_ENABLE"] = "1",
    };

    /// <summary>Sets each default not already in the native environment; idempotent, call before any torch work.</summary>
    public static void Apply()
    {
        if (Interlocked.Exchange(ref _applied, 1) == 1 || !OperatingSystem.IsLinux()) return;
        foreach (var (name, value) in Defaults)
            if (Environment.GetEnvironmentVariable(name) is null) _ = setenv(name, value, 0);
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int setenv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);
}
