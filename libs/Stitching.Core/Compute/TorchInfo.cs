using TorchSharp;

namespace Stitching.Core.Compute;

/// <summary>Facts about the torch runtime this process loaded.</summary>
public static class TorchInfo
{
    public static string Version => torch.__version__;
    public static int Threads => torch.get_num_threads();
    public static bool CudaAvailable => torch.cuda.is_available();
    public static string DefaultDevice => CudaAvailable ? "cuda" : "cpu";
}
