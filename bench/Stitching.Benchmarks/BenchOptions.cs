namespace Stitching.Benchmarks;

/// <summary>What one benchmark run measures.</summary>
/// <param name="Threads">Torch intra-op threads, for TorchSharp and for the PyTorch baseline alike.</param>
/// <param name="Batch">Sequences per forward.</param>
/// <param name="Context">Tokens per sequence.</param>
/// <param name="Repeat">Timed repetitions (after <see cref="Warmup"/> untimed ones).</param>
/// <param name="LayersRead">Blocks run: the capture reads blocks.{LayersRead}.hook_resid_pre.</param>
/// <param name="SkipPython">Skip the PyTorch baseline.</param>
/// <param name="Warmup">Untimed forwards before timing.</param>
/// <param name="MatmulSize">Square size of the peak matmul.</param>
/// <param name="Seed">Seed for the weights and the token ids.</param>
public sealed record BenchOptions(
    int Threads, int Batch, int Context, int Repeat, int LayersRead, bool SkipPython,
    int Warmup = 2, int MatmulSize = 2048, long Seed = 1234);
