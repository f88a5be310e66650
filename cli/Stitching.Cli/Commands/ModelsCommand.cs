using System.CommandLine;
using System.Diagnostics;
using Stitching.Core.Errors;
using Stitching.Models.Sources;
using Stitching.Contracts.Activations.V1;

namespace Stitching.Cli.Commands;

/// <summary>stitch models list|describe|pull: the models a server can run.</summary>
public static class ModelsCommand
{
    public static Command Create()
    {
        var list = new Command("list", "Models the server finds: its model store, the Hugging Face hub cache, and loaded ones.");
        list.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var models = await Client(c).ListModelsAsync(new ListModelsRequest(), cancellationToken: ct);
            CliOutput.Print(parse, models, () =>
            {
                if (models.Models.Count == 0) Console.WriteLine("no models found (put Hugging Face checkpoint folders in the model store, or pass a folder path)");
                foreach (var m in models.Models)
                    Console.WriteLine($"{m.Name,-28} {m.Family,-9} {m.Layers,3} layers  d={m.Width,-5} vocab={m.VocabSize,-6} {m.Parameters / 1e6,8:F2}M  {m.Source,-9} {(m.Loaded ? "loaded " + m.Dtype : "")}  {m.Path}");
            });
            return 0;
        }));

        var model = new Argument<string>("model") { Description = "Model-store name, checkpoint folder, or Hugging Face repo id (org/name[@revision])." };
        var describe = new Command("describe", "Shape, hooks and tokenizer facts of one model.") { model };
        describe.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var m = await Client(c).DescribeModelAsync(new DescribeModelRequest { Model = new ModelSpec { Model = parse.GetValue(model)! } }, cancellationToken: ct);
            CliOutput.Print(parse, m, () => Describe(m));
            return 0;
        }));

        var pull = new Command("pull", "Download a Hugging Face repo into the hub cache on the server (HF_TOKEN for gated models) and load it.") { model };
        pull.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var name = parse.GetValue(model)!;
            if (c.IsEmbedded) await DownloadAsync(name, ct);
            var m = await ProgressBar.WaitAsync($"loading {name} on the server", Client(c).LoadModelAsync(new LoadModelRequest { Model = new ModelSpec { Model = name }, AllowDownload = true }, cancellationToken: ct).ResponseAsync, ct);
            CliOutput.Print(parse, m, () => Console.WriteLine($"{m.Name}: {m.Family}, {m.Layers} layers, d={m.Width}, {m.Parameters / 1e6:F1}M parameters at {m.Path}"));
            return 0;
        }));

        return new Command("models", "Models: list, describe, pull.") { list, describe, pull };
    }

    private static void Describe(ModelInfo m)
    {
        Console.WriteLine($"name:        {m.Name}\npath:        {m.Path}\nsource:      {m.Source}\nfamily:      {m.Family}");
        Console.WriteLine($"layers:      {m.Layers}\nwidth:       {m.Width}\nvocab:       {m.VocabSize}\nparameters:  {m.Parameters:N0}");
        Console.WriteLine($"positions:   {(m.MaxPositions > 0 ? m.MaxPositions.ToString() : "unbounded (rotary)")}");
        Console.WriteLine($"bos/eos:     {m.BosId}/{m.EosId} (adds BOS: {(m.AddsBos ? "yes" : "no")})\nfingerprint: {m.Fingerprint}\nloaded:      {(m.Loaded ? $"yes ({m.Dtype} on {m.Device})" : "no")}");
        Console.WriteLine($"hooks:       {string.Join(", ", m.Hooks.Take(6))}{(m.Hooks.Count > 6 ? $", ... ({m.Hooks.Count} in all, through {m.Hooks[^1]})" : "")}");
    }

    /// <summary>
    /// The embedded server reads this process's hub cache (HubOptions from the same environment), so the CLI
    /// downloads a hub repo itself, with a bar and ETA per file on stderr; LoadModel then finds the snapshot
    /// complete. A --server downloads on its side, where the CLI sees no bytes (only the elapsed time).
    /// </summary>
    private static async Task DownloadAsync(string name, CancellationToken ct)
    {
        try { if (ModelReference.Parse(name) is not HubModelReference) return; }
        catch (StitchingException) { return; } // a model-store name: the server resolves it, nothing to download
        ProgressBar? bar = null;
        var (file, clock, firstBytes) = ("", Stopwatch.StartNew(), 0L);
        await new ModelResolver().ResolveAsync(name, allowDownload: true, p =>
        {
            if (p.File != file) { (file, firstBytes) = (p.File, p.BytesDone); clock.Restart(); } // a new (or resumed) file: its rate starts here
            bar ??= new ProgressBar(Console.Error);
            var fraction = p.BytesTotal is > 0 and var total ? (double)p.BytesDone / total : 0;
            var rate = (p.BytesDone - firstBytes) / Math.Max(clock.Elapsed.TotalSeconds, 1e-3);
            double? eta = p.BytesTotal is { } t && rate > 0 ? (t - p.BytesDone) / rate : null;
            bar.Update(fraction, $"{p.File} {p.BytesDone / 1e6:F1}/{(p.BytesTotal is { } size ? $"{size / 1e6:F1}" : "?")} MB", eta);
        }, ct);
        bar?.Finish();
    }

    private static ActivationsService.ActivationsServiceClient Client(ServerConnection c) => new(c.Channel);
}
