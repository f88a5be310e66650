using System.CommandLine;
using Stitching.Benchmarks;
using Stitching.Core.Compute;

// The benchmark suite (../README.md): with no command it runs every figure in one invocation and ends with one
// line per figure, "bench NAME: ours X UNIT, baseline Y UNIT, ratio R"; each command runs one group.
TorchEnvironment.Apply();
var threads = new Option<int>("--threads") { Description = "Torch threads for ours and the PyTorch baselines (default: all cores).", DefaultValueFactory = _ => Environment.ProcessorCount, Recursive = true };
var repeat = new Option<int>("--repeat") { Description = "Timed repetitions after the warm-up.", DefaultValueFactory = _ => 10 };
var batch = new Option<int>("--batch") { Description = "Sequences per forward.", DefaultValueFactory = _ => 8 };
var context = new Option<int>("--context") { Description = "Tokens per sequence (at most 1024).", DefaultValueFactory = _ => 128 };
var layersRead = new Option<int>("--layers-read") { Description = "Read blocks.N.hook_resid_pre, so N blocks run (1..11).", DefaultValueFactory = _ => 6 };
var skipPython = new Option<bool>("--skip-python") { Description = "Measure our runtime only." };
var d = new Option<int>("--d") { Description = "SAE input width.", DefaultValueFactory = _ => 768 };
var latents = new Option<int>("--latents") { Description = "SAE latents.", DefaultValueFactory = _ => 16384 };
var k = new Option<int>("--k") { Description = "TopK active latents.", DefaultValueFactory = _ => 32 };
var saeBatch = new Option<int>("--sae-batch") { Description = "Tokens per SAE step.", DefaultValueFactory = _ => 1024 };
var saeRepeat = new Option<int>("--sae-repeat") { Description = "Timed SAE steps after one warm-up.", DefaultValueFactory = _ => 5 };
var streamTokens = new Option<long>("--stream-tokens") { Description = "Tokens of the ActivationSet streamed (three streams of d 64).", DefaultValueFactory = _ => 262144 };
var memoryTokens = new Option<long>("--memory-tokens") { Description = "N of the flat-memory figure (runs N and 4N).", DefaultValueFactory = _ => 262144 };

List<Figure> figures = [];
double bestMatmul = 0;
void Matmul(ParseResult p) => bestMatmul = MatmulBenchmark.Run(2048, p.GetValue(threads), 10, figures).Best;
int Extract(ParseResult p) => ExtractionBenchmark.Run(new BenchOptions(Math.Max(1, p.GetValue(threads)), p.GetValue(batch), p.GetValue(context),
    Math.Max(1, p.GetValue(repeat)), p.GetValue(layersRead), p.GetValue(skipPython)), bestMatmul, figures);
void Sae(ParseResult p) => SaeTrainingBenchmark.Run(p.GetValue(d), p.GetValue(latents), p.GetValue(k), p.GetValue(saeBatch), p.GetValue(threads), 1, p.GetValue(saeRepeat), bestMatmul, figures);
async Task Stream(ParseResult p)
{
    await using var pipeline = await Pipeline.StartAsync(Pipeline.EnsureFamily());
    await StreamingBenchmark.RunAsync(pipeline, p.GetValue(streamTokens), 3, figures);
}
void Memory(ParseResult p) { Pipeline.EnsureFamily(); MemoryBenchmark.Run(p.GetValue(memoryTokens), figures); }
int Summary()
{
    Console.WriteLine();
    Console.WriteLine($"summary ({Environment.ProcessorCount} cores, load average {LoadAverage()} at the end; targets from issue 16 in brackets):");
    foreach (var f in figures) Console.WriteLine($"{f.Summary}   [{f.Target}{(f.Note.Length > 0 ? "; " : "")}{f.Note}]");
    return 0;
}
static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";
void Section(string title) { Console.WriteLine(); Console.WriteLine($"== {title}"); }

var extractCommand = new Command("extract", "Extraction tokens/s on a GPT-2-small-shaped model vs PyTorch eager and the matmul roofline.") { repeat, batch, context, layersRead, skipPython };
extractCommand.SetAction(p => { Matmul(p); Extract(p); return Summary(); });
var saeCommand = new Command("sae", "TopK SAE training tokens/s: ours sparse and dense vs PyTorch dense eager.") { d, latents, k, saeBatch, saeRepeat };
saeCommand.SetAction(p => { Matmul(p); Sae(p); return Summary(); });
var matmulCommand = new Command("matmul", "float32 2048^3 matmul: TorchSharp's libtorch vs PyTorch on OpenBLAS.");
matmulCommand.SetAction(p => { Matmul(p); return Summary(); });
var streamCommand = new Command("stream", "gRPC reads on loopback vs a raw socket; the Redis hit path vs redis-benchmark.") { streamTokens };
streamCommand.SetAction(async (p, _) => { await Stream(p); return Summary(); });
var memoryCommand = new Command("memory", "Peak RSS of extraction + SAE training at N and 4N tokens (one process each).") { memoryTokens };
memoryCommand.SetAction(p => { Memory(p); return Summary(); });
var probeTokens = new Argument<long>("tokens");
var probeCommand = new Command("memory-probe", "Internal: one pipeline run at TOKENS, printing its peaks as JSON.") { probeTokens };
probeCommand.Hidden = true;
probeCommand.SetAction(async (p, _) => await MemoryBenchmark.ProbeAsync(p.GetValue(probeTokens)));

var root = new RootCommand("The Stitching benchmark suite: every figure of bench/README.md in one run, each against a baseline measured in the same run.")
{
    threads, repeat, batch, context, layersRead, skipPython, d, latents, k, saeBatch, saeRepeat, streamTokens, memoryTokens,
    extractCommand, saeCommand, matmulCommand, streamCommand, memoryCommand, probeCommand,
};
root.SetAction(async (p, _) =>
{
    Console.WriteLine($"machine: {Environment.ProcessorCount} logical cores, load average {LoadAverage()}; torch threads {p.GetValue(threads)}; libtorch {TorchInfo.Version}");
    Section("matmul"); Matmul(p);
    Section("extraction"); Extract(p);
    Section("SAE training"); Sae(p);
    Section("streaming and Redis"); await Stream(p);
    Section("memory"); Memory(p);
    return Summary();
});
return await root.Parse(args).InvokeAsync();
