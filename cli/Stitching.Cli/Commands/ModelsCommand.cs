using System.CommandLine;
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
            if (models.Models.Count == 0) Console.WriteLine("no models found (put Hugging Face checkpoint folders in the model store, or pass a folder path)");
            foreach (var m in models.Models)
                Console.WriteLine($"{m.Name,-28} {m.Family,-9} {m.Layers,3} layers  d={m.Width,-5} vocab={m.VocabSize,-6} {m.Parameters / 1e6,8:F2}M  {m.Source,-9} {(m.Loaded ? "loaded " + m.Dtype : "")}  {m.Path}");
            return 0;
        }));

        var model = new Argument<string>("model") { Description = "Model-store name, checkpoint folder, or Hugging Face repo id (org/name[@revision])." };
        var describe = new Command("describe", "Shape, hooks and tokenizer facts of one model.") { model };
        describe.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var m = await Client(c).DescribeModelAsync(new DescribeModelRequest { Model = new ModelSpec { Model = parse.GetValue(model)! } }, cancellationToken: ct);
            Console.WriteLine($"name:        {m.Name}\npath:        {m.Path}\nsource:      {m.Source}\nfamily:      {m.Family}");
            Console.WriteLine($"layers:      {m.Layers}\nwidth:       {m.Width}\nvocab:       {m.VocabSize}\nparameters:  {m.Parameters:N0}");
            Console.WriteLine($"positions:   {(m.MaxPositions > 0 ? m.MaxPositions.ToString() : "unbounded (rotary)")}");
            Console.WriteLine($"bos/eos:     {m.BosId}/{m.EosId} (adds BOS: {(m.AddsBos ? "yes" : "no")})\nfingerprint: {m.Fingerprint}\nloaded:      {(m.Loaded ? $"yes ({m.Dtype} on {m.Device})" : "no")}");
            Console.WriteLine($"hooks:       {string.Join(", ", m.Hooks.Take(6))}{(m.Hooks.Count > 6 ? $", ... ({m.Hooks.Count} in all, through {m.Hooks[^1]})" : "")}");
            return 0;
        }));

        var pull = new Command("pull", "Download a Hugging Face repo into the hub cache on the server (HF_TOKEN for gated models) and load it.") { model };
        pull.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var m = await Client(c).LoadModelAsync(new LoadModelRequest { Model = new ModelSpec { Model = parse.GetValue(model)! }, AllowDownload = true }, cancellationToken: ct);
            Console.WriteLine($"{m.Name}: {m.Family}, {m.Layers} layers, d={m.Width}, {m.Parameters / 1e6:F1}M parameters at {m.Path}");
            return 0;
        }));

        return new Command("models", "Models: list, describe, pull.") { list, describe, pull };
    }

    private static ActivationsService.ActivationsServiceClient Client(ServerConnection c) => new(c.Channel);
}
