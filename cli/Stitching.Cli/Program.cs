using System.CommandLine;
using Stitching.Cli.Commands;

// stitch: the command-line client. Every command talks gRPC: to --server when given, else to an
// embedded all-in-one server started in this process on a loopback port.
var root = new RootCommand("stitch: move learned features (SAEs, probes, steering vectors) between language models through affine stitches.")
{
    ServeCommand.Create(),
    HealthCommand.Create(),
    OpsCommand.Create(),
    BenchCommand.Create(),
    ModelsCommand.Create(),
    ExtractCommand.Create(),
    ActivationsCommand.Create(),
    ZooCommand.Create(),
    PaperCommand.Create(),
    ReproduceCommand.Create(),
    SweepCommand.Create(),
    SaeCommand.Create(),
    EvalCommand.Create(),
};
foreach (var command in StitchCommands.Create()) root.Subcommands.Add(command);
// --server and --store apply to every command (recursive options of the root).
root.Options.Add(ServerConnection.ServerOption);
root.Options.Add(ServerConnection.StoreOption);
root.Options.Add(ServerConnection.TokenOption);
return await root.Parse(args).InvokeAsync();
