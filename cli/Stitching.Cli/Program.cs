using System.CommandLine;
using Stitching.Cli.Commands;

// stitch: the command-line client. Every command talks gRPC: to --server when given, else to an
// embedded all-in-one server started in this process on a loopback port.
Stitching.Core.Compute.TorchEnvironment.Apply(); // before the first tensor (zoo builds run torch here too)
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
// --server, --store, --token, --verbose and --json apply to every command (recursive options of the root).
root.Options.Add(ServerConnection.ServerOption);
root.Options.Add(ServerConnection.StoreOption);
root.Options.Add(ServerConnection.TokenOption);
root.Options.Add(ServerConnection.VerboseOption);
root.Options.Add(CliOutput.JsonOption);
// Errors reach the user as one line on stderr and a non-zero exit code (2: what they typed); --verbose adds the stack trace.
var parsed = root.Parse(args);
if (parsed.Action is System.CommandLine.Invocation.ParseErrorAction && args.Length > 0)
{
    Console.Error.WriteLine($"error: {UsageErrors.Sentence(parsed)}");
    return 2;
}
try
{
    return await parsed.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (OperationCanceledException)
{
    Console.Error.WriteLine("error: cancelled");
    return 130;
}
catch (Exception e)
{
    Console.Error.WriteLine($"error: {ServerConnection.Sentence(e)}");
    if (parsed.GetValue(ServerConnection.VerboseOption)) Console.Error.WriteLine(e);
    return ServerConnection.ExitCode(e);
}
