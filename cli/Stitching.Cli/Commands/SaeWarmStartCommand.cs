using System.CommandLine;
using System.Text.Json.Nodes;
using Stitching.Contracts.Sae.V1;

namespace Stitching.Cli.Commands;

/// <summary>
/// stitch sae warmstart: the paper's section 5 experiment in one command. Trains (or takes) an SAE on A,
/// transfers it through the stitch, trains B's SAE from scratch and from the transferred weights at the
/// same width and budget, and prints the FLOPs-to-threshold table.
/// </summary>
public static class SaeWarmStartCommand
{
    public static Command Create()
    {
        var setA = new Option<string?>("--source-set") { Description = "ActivationSet of model A (to train the source SAE)." };
        var sourceSae = new Option<string?>("--source-sae") { Description = "An existing SAE on A instead of training one." };
        var setB = new Option<string>("--target-set") { Description = "ActivationSet of model B.", Required = true };
        var hookA = new Option<string?>("--source-hook") { Description = "Hook of the A set." };
        var hookB = new Option<string?>("--target-hook") { Description = "Hook of the B set." };
        var stitch = new Option<string>("--stitch") { Description = "Stitch artifact id (A -> B).", Required = true };
        var renorm = new Option<bool>("--renormalize") { Description = "Unit-norm the transferred decoder rows before warm start." };
        var thresholds = new Option<double[]>("--thresholds") { Description = "Explained-variance thresholds.", AllowMultipleArgumentsPerToken = true };
        var o = new SaeCommand.TrainOptions();
        var command = new Command("warmstart", "Scratch vs warm start on model B at one width; prints FLOPs to thresholds and savings.")
        {
            setA, sourceSae, setB, hookA, hookB, stitch, renorm, thresholds,
        };
        foreach (var opt in o.All) command.Options.Add(opt);
        command.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var client = SaeCommand.Client(c);
            SaeInfo? source;
            if (parse.GetValue(sourceSae) is { Length: > 0 } given) source = await client.DescribeAsync(new DescribeRequest { Sae = SaeCommand.Ref("sae", given) }, cancellationToken: ct);
            else if (parse.GetValue(setA) is { Length: > 0 } a)
            {
                Console.Error.WriteLine("training the source SAE on A");
                source = await SaeCommand.TrainAsync(c, o.Request(parse, a, parse.GetValue(hookA)), ct);
            }
            else throw new ArgumentException("give --source-sae or --source-set.");
            if (source is null) return 1;
            var transferred = await client.TransferAsync(new TransferRequest
            {
                Sae = source.Ref, Stitch = SaeCommand.Ref("stitch", parse.GetValue(stitch)!), RenormalizeDecoder = parse.GetValue(renorm),
            }, cancellationToken: ct);
            Console.Error.WriteLine($"transferred: sae/{transferred.Ref.Id}; training B from scratch");
            var scratch = await SaeCommand.TrainAsync(c, o.Request(parse, parse.GetValue(setB)!, parse.GetValue(hookB)), ct);
            Console.Error.WriteLine("training B from the transferred SAE");
            var warmRequest = o.Request(parse, parse.GetValue(setB)!, parse.GetValue(hookB));
            warmRequest.Init = transferred.Ref;
            var warm = await SaeCommand.TrainAsync(c, warmRequest, ct);
            if (scratch is null || warm is null) return 1;
            var compare = new CompareRequest { Scratch = scratch.Ref, Warm = warm.Ref };
            compare.Thresholds.AddRange(parse.GetValue(thresholds) ?? []);
            var comparison = await client.CompareAsync(compare, cancellationToken: ct);
            var result = new JsonObject
            {
                ["source"] = CliOutput.Node(source), ["transferred"] = CliOutput.Node(transferred),
                ["scratch"] = CliOutput.Node(scratch), ["warm"] = CliOutput.Node(warm), ["comparison"] = CliOutput.Node(comparison),
            };
            CliOutput.Print(parse, result, () =>
            {
                SaeCommand.Print(scratch);
                SaeCommand.Print(warm);
                SaeCommand.PrintComparison(comparison);
            });
            return 0;
        }));
        return command;
    }
}
