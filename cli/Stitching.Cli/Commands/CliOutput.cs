using System.CommandLine;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Stitching.Contracts.Common.V1;

namespace Stitching.Cli.Commands;

/// <summary>
/// What a command prints on stdout: text for a person, or with --json exactly one JSON document (progress,
/// notes and errors go to stderr either way, so `stitch ... --json | jq` always parses).
/// </summary>
public static class CliOutput
{
    public static readonly Option<bool> JsonOption = new("--json") { Description = "Print the result as one JSON document on stdout (progress and notes stay on stderr).", Recursive = true };

    private static readonly TypeRegistry Registry = TypeRegistry.FromFiles(ContractFiles());

    /// <summary>
    /// Proto3 JSON with every field present (zeros and empty lists too, so scripts need no defaults), under the
    /// proto's own snake_case names like every other result here; Any payloads of every contract resolve.
    /// </summary>
    private static readonly JsonFormatter Protobuf = new(JsonFormatter.Settings.Default.WithFormatDefaultValues(true).WithPreserveProtoFieldNames(true).WithTypeRegistry(Registry));

    private static readonly JsonSerializerOptions Serializer = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals, // NaN (a threshold never reached) is a value, not a crash
    };

    public static bool Json(ParseResult parse) => parse.GetValue(JsonOption);

    /// <summary>Where notes that are not the result go: stdout for a person, stderr under --json.</summary>
    public static TextWriter Notes(ParseResult parse) => Json(parse) ? Console.Error : Console.Out;

    /// <summary>
    /// The result under --json (a protobuf message as proto3 JSON, a JsonNode as is, anything else through
    /// System.Text.Json in snake_case), else <paramref name="text"/>: each command decides in this one call.
    /// </summary>
    public static void Print<T>(ParseResult parse, T result, Action text)
    {
        if (Json(parse)) Console.WriteLine(Serialize(result));
        else text();
    }

    public static string Serialize<T>(T value) => value switch
    {
        JsonNode node => node.ToJsonString(),
        IMessage message => Format(message),
        _ => JsonSerializer.Serialize(value, Serializer),
    };

    /// <summary>A message as a JsonNode, to nest inside a larger result.</summary>
    public static JsonNode? Node(IMessage? message) => message is null ? null : JsonNode.Parse(Format(message));

    public static string Format(IMessage message)
    {
        try { return Protobuf.Format(message); }
        catch (InvalidOperationException) when (message is Operation or ListOperationsResponse)
        {
            // An operation of a kind whose spec or result type no contract declares (a test's job kind): print it without those payloads.
            IMessage copy = message is Operation one ? one.Clone() : ((ListOperationsResponse)message).Clone();
            foreach (var op in copy is Operation o ? [o] : ((ListOperationsResponse)copy).Operations)
            {
                if (!Known(op.Spec)) op.Spec = null;
                if (!Known(op.Result)) op.Result = null;
            }
            return Protobuf.Format(copy);
        }
    }

    /// <summary>A failed operation as the one error line a user reads; returns the exit code (1).</summary>
    public static int Failed(Operation done)
    {
        var why = done.Error is null ? "" : $": {done.Error.Code}: {done.Error.Message.ReplaceLineEndings(" ").Trim()}";
        Console.Error.WriteLine($"error: operation {done.Id} ({done.Kind}) ended {done.State.ToString().ToUpperInvariant()}{why}");
        return 1;
    }

    private static bool Known(Google.Protobuf.WellKnownTypes.Any? any) =>
        any is null || Registry.Find(Google.Protobuf.WellKnownTypes.Any.GetTypeName(any.TypeUrl)) is not null;

    /// <summary>Every generated file descriptor of the contracts assembly (the *Reflection classes protoc emits).</summary>
    private static FileDescriptor[] ContractFiles() => typeof(Operation).Assembly.GetTypes()
        .Where(t => t.IsAbstract && t.IsSealed && t.Name.EndsWith("Reflection", StringComparison.Ordinal))
        .Select(t => t.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static)?.GetValue(null))
        .OfType<FileDescriptor>().ToArray();
}
