using System.CommandLine;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Common.V1;

namespace Stitching.Cli.Commands;

/// <summary>stitch extract: corpus -> TokenSet -> one ActivationSet per model (an operation, followed with a progress bar).</summary>
public static class ExtractCommand
{
    public static Command Create()
    {
        var models = new Option<string[]>("--model") { Description = "Model(s) to read; several give a paired extraction over one TokenSet.", Required = true, AllowMultipleArgumentsPerToken = true };
        var hooks = new Option<string[]>("--hooks") { Description = "Hook names, comma-separated; one list for all models, or one --hooks per --model.", Required = true };
        var textFiles = new Option<string[]>("--text-file") { Description = "Text files on the server, one document each.", AllowMultipleArgumentsPerToken = true };
        var jsonl = new Option<string[]>("--jsonl") { Description = "JSONL files on the server, one document per line.", AllowMultipleArgumentsPerToken = true };
        var textField = new Option<string>("--text-field") { Description = "JSONL field holding the text.", DefaultValueFactory = _ => "text" };
        var corpus = new Option<string?>("--corpus") { Description = "A built-in corpus, e.g. brown:train." };
        var context = new Option<int>("--context") { Description = "Tokens per row.", DefaultValueFactory = _ => 128 };
        var maxTokens = new Option<long>("--max-tokens") { Description = "Stop after this many tokens (0 = all)." };
        var maxDocs = new Option<long>("--max-documents") { Description = "Use at most this many documents (0 = all)." };
        var bos = new Option<string>("--bos") { Description = "BOS policy: model, always, never.", DefaultValueFactory = _ => "model" };
        var batch = new Option<int>("--batch") { Description = "Rows per forward batch.", DefaultValueFactory = _ => 8 };
        var shard = new Option<long>("--shard-tokens") { Description = "Tokens per shard file.", DefaultValueFactory = _ => 65536 };
        var dtype = new Option<string>("--dtype") { Description = "Model dtype: float32, bfloat16.", DefaultValueFactory = _ => "float32" };
        var detach = new Option<bool>("--detach") { Description = "Print the operation id and return at once." };
        var slices = new Option<int>("--slices") { Description = "Extract one of N slices of the set (one per pod of a Kubernetes Indexed Job); the last slice to finish composes the set." };
        var sliceIndex = new Option<int?>("--slice-index") { Description = "The slice to extract, 0 to N-1 (default: $JOB_COMPLETION_INDEX)." };
        var command = new Command("extract", "Extract activations of a corpus into the store (reuses identical earlier extractions).")
        {
            models, hooks, textFiles, jsonl, textField, corpus, context, maxTokens, maxDocs, bos, batch, shard, dtype, detach, slices, sliceIndex,
        };
        command.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var request = new ExtractRequest
            {
                Corpus = Corpus(parse.GetValue(textFiles), parse.GetValue(jsonl), parse.GetValue(textField)!, parse.GetValue(corpus)),
                Tokens = new TokenSetSpec { ContextLength = parse.GetValue(context), MaxTokens = parse.GetValue(maxTokens), BosPolicy = ParseBos(parse.GetValue(bos)!) },
                BatchSize = parse.GetValue(batch), ShardTokens = parse.GetValue(shard), SliceCount = parse.GetValue(slices),
            };
            if (request.SliceCount > 1)
                request.SliceIndex = parse.GetValue(sliceIndex) ?? (int.TryParse(Environment.GetEnvironmentVariable("JOB_COMPLETION_INDEX"), out var e) ? e
                    : throw new ArgumentException("--slice-index: give it, or run in a Kubernetes Indexed Job (JOB_COMPLETION_INDEX)."));
            request.Corpus.MaxDocuments = parse.GetValue(maxDocs);
            var modelNames = parse.GetValue(models)!;
            var hookLists = parse.GetValue(hooks)!;
            if (hookLists.Length != 1 && hookLists.Length != modelNames.Length)
                throw new ArgumentException("--hooks: give one list for all models or one --hooks per --model.");
            for (var i = 0; i < modelNames.Length; i++)
                request.Models.Add(new ModelHooks
                {
                    Model = new ModelSpec { Model = Directory.Exists(modelNames[i]) ? Path.GetFullPath(modelNames[i]) : modelNames[i], Dtype = parse.GetValue(dtype)! },
                    Hooks = { hookLists[hookLists.Length == 1 ? 0 : i].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) },
                });
            var op = await new ActivationsService.ActivationsServiceClient(c.Channel).ExtractAsync(request, cancellationToken: ct);
            if (parse.GetValue(detach)) { CliOutput.Print(parse, op, () => Console.WriteLine(op.Id)); return 0; }
            var done = await ProgressBar.FollowAsync(c, op, ct);
            if (done.State != OperationState.Succeeded) return CliOutput.Failed(done);
            var result = done.Result.Unpack<ExtractResult>();
            CliOutput.Print(parse, result, () =>
            {
                Console.WriteLine($"token set  {result.TokenSet.Kind}/{result.TokenSet.Id}: {result.Rows} rows, {result.Tokens} tokens");
                for (var i = 0; i < result.ActivationSets.Count; i++)
                    Console.WriteLine($"{modelNames[i]}: {result.ActivationSets[i].Kind}/{result.ActivationSets[i].Id}{(result.Reused[i] ? " (reused)" : "")}" +
                        $"{(i < result.Complete.Count && !result.Complete[i] ? $" (slice {request.SliceIndex} of {request.SliceCount} stored; the set is composed when every slice is in)" : "")}");
            });
            return 0;
        }));
        return command;
    }

    private static CorpusSpec Corpus(string[]? textFiles, string[]? jsonl, string textField, string? named)
    {
        var given = (textFiles is { Length: > 0 } ? 1 : 0) + (jsonl is { Length: > 0 } ? 1 : 0) + (string.IsNullOrEmpty(named) ? 0 : 1);
        if (given != 1) throw new ArgumentException("give exactly one corpus: --text-file, --jsonl or --corpus.");
        if (textFiles is { Length: > 0 }) return new CorpusSpec { TextFiles = new TextFiles { Paths = { textFiles.Select(Path.GetFullPath) } } };
        if (jsonl is { Length: > 0 }) return new CorpusSpec { Jsonl = new JsonlFiles { Paths = { jsonl.Select(Path.GetFullPath) }, TextField = textField } };
        return new CorpusSpec { Named = named! };
    }

    public static BosPolicy ParseBos(string s) => s switch
    {
        "model" or "" => BosPolicy.Unspecified,
        "always" => BosPolicy.Always,
        "never" => BosPolicy.Never,
        _ => throw new ArgumentException($"--bos: '{s}' is not one of model, always, never."),
    };
}
