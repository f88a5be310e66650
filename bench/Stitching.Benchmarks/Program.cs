using System.CommandLine;
using Stitching.Benchmarks;

// `sae` as the first argument selects the SAE training benchmark: sae [d] [latents] [k] [batch] [threads] [warmup] [repeat].
if (args.Length > 0 && args[0] == "sae")
{
    int Arg(int i, int fallback) => args.Length > i ? int.Parse(args[i]) : fallback;
    return SaeTrainingBenchmark.Run(Arg(1, 768), Arg(2, 16384), Arg(3, 32), Arg(4, 1024), Arg(5, Environment.ProcessorCount), Arg(6, 1), Arg(7, 3));
}

// Extraction throughput of our runtime vs a PyTorch eager baseline on the same machine; see ../README.md.
var threads = new Option<int>("--threads") { Description = "Torch threads for both runtimes (default: all cores).", DefaultValueFactory = _ => Environment.ProcessorCount };
var batch = new Option<int>("--batch") { Description = "Sequences per forward.", DefaultValueFactory = _ => 8 };
var context = new Option<int>("--context") { Description = "Tokens per sequence (at most 1024).", DefaultValueFactory = _ => 128 };
var repeat = new Option<int>("--repeat") { Description = "Timed repetitions after the warm-up.", DefaultValueFactory = _ => 10 };
var layersRead = new Option<int>("--layers-read") { Description = "Read blocks.N.hook_resid_pre, so N blocks run (1..11).", DefaultValueFactory = _ => 6 };
var skipPython = new Option<bool>("--skip-python") { Description = "Measure our runtime only." };
var root = new RootCommand("Extraction tokens/s of the Stitching runtime on a GPT-2-small-shaped model, against the machine's matmul peak and a PyTorch eager baseline.")
{
    threads, batch, context, repeat, layersRead, skipPython,
};
root.SetAction(parse => ExtractionBenchmark.Run(new BenchOptions(
    Math.Max(1, parse.GetValue(threads)), parse.GetValue(batch), parse.GetValue(context), Math.Max(1, parse.GetValue(repeat)),
    parse.GetValue(layersRead), parse.GetValue(skipPython))));
return root.Parse(args).Invoke();
