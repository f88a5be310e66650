using Stitching.Core.Activations;
using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Stitching.Activations.ModelHosting;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Common.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Caching;
using Stitching.Core.Compute;
using Stitching.Core.Errors;
using Stitching.Core.Operations;
using Stitching.Core.Safetensors;
using Stitching.Core.Telemetry;
using Stitching.Models.Tokenization;

using FlopLedger = Stitching.Core.Compute.FlopLedger;
using LedgerEntry = Stitching.Core.Compute.LedgerEntry;

namespace Stitching.Activations.Extraction;

/// <summary>
/// "activations.extract": corpus -> TokenSet -> one ActivationSet per model, each written shard by
/// shard (memory bounded by batch and shard size) and offered to the Redis cache after commit.
/// Artifact ids hash everything that determines the bytes, so an identical request reuses them; a
/// restarted job redoes only what was not committed.
/// </summary>
public sealed class ExtractHandler(ModelHost host, Corpus corpus, ArtifactStore store, IShardCache cache, TorchWorker worker,
    [FromKeyedServices("Activations")] StitchingTelemetry telemetry, ILogger<ExtractHandler> log) : IOperationHandler
{
    public const string OperationKind = "activations.extract";
    public string Kind => OperationKind;
    public bool Resumable => true;

    public async Task ExecuteAsync(OperationContext context, CancellationToken ct)
    {
        var request = context.SpecAs<ExtractRequest>();
        var entries = await ValidateAsync(request, host, ct);
        var tokenizerPath = Path.Combine(entries[0].Path, "tokenizer.json");
        var tokenizerHash = ContentIds.Sha256Hex(File.ReadAllBytes(tokenizerPath));
        for (var i = 1; i < entries.Count; i++)
            if (ContentIds.Sha256Hex(File.ReadAllBytes(Path.Combine(entries[i].Path, "tokenizer.json"))) != tokenizerHash)
                throw StitchingException.FailedPrecondition($"models[{i}] ({entries[i].Name}) has a different tokenizer from models[0] ({entries[0].Name}); paired extraction needs one tokenizer (one model family).", $"models[{i}]");

        context.Report(new OperationProgress { Phase = "tokenize" });
        var tokenSetRef = await TokenSetAsync(request, HfTokenizer.Load(tokenizerPath), tokenizerHash, context, ct);
        using var tokens = OpenTokens(tokenSetRef);
        var result = new ExtractResult { TokenSet = tokenSetRef, Tokens = tokens.Tokens, Rows = tokens.Rows };
        context.AddOutput(tokenSetRef);
        double flops = 0;
        for (var i = 0; i < request.Models.Count; i++)
        {
            var (asRef, reused, spent, complete) = await ActivationSetAsync(request, i, entries[i], tokenSetRef, tokens, context, flops, ct);
            flops += spent;
            result.ActivationSets.Add(asRef);
            result.Reused.Add(reused);
            result.Complete.Add(complete);
            if (complete) context.AddOutput(asRef);
        }
        context.Report(new OperationProgress { Phase = "done", Tokens = tokens.Tokens * request.Models.Count, Flops = flops });
        context.SetResult(result);
    }

    public const int MaxContext = 1 << 15, MaxModels = 16;
    public const long MaxShardTokens = 1 << 24;
    public const int MaxSlices = 4096;

    /// <summary>
    /// Everything about a request that can be checked before work starts (the RPC runs it too, so a bad
    /// request fails at once): sizes, the models (resolved, with tokenizers), and every hook against its model.
    /// </summary>
    public static async Task<List<CatalogEntry>> ValidateAsync(ExtractRequest r, ModelHost host, CancellationToken ct)
    {
        if (r.Corpus is null) throw StitchingException.InvalidArgument("corpus", "is required.");
        if (r.Corpus.SourceCase == CorpusSpec.SourceOneofCase.None) throw StitchingException.InvalidArgument("corpus", "set one source: texts, text_files, jsonl or named.");
        Check.NonNegative(r.Corpus.MaxDocuments, "corpus.max_documents", "0 = all");
        if (r.Models.Count is 0 or > MaxModels) throw StitchingException.InvalidArgument("models", $"name 1 to {MaxModels} models with hooks.");
        Check.InRange(r.BatchSize, 0, 1024, "batch_size", "rows per forward pass; 0 = default 8");
        Check.InRange(r.ShardTokens, 0, MaxShardTokens, "shard_tokens", "tokens per shard; 0 = default 65536");
        var spec = r.Tokens ?? new TokenSetSpec();
        Check.InRange(spec.ContextLength, 0, MaxContext, "tokens.context_length", "tokens per row; 0 = default 128");
        if (spec.ContextLength is > 0 and < 2) throw StitchingException.InvalidArgument("tokens.context_length", "must be at least 2.");
        Check.NonNegative(spec.MaxTokens, "tokens.max_tokens", "0 = the whole corpus");
        Check.Defined(spec.BosPolicy, "tokens.bos_policy");
        Check.InRange(r.SliceCount, 0, MaxSlices, "slice_count", "slices of the set extracted apart; 0 or 1 = the whole set");
        Check.InRange(r.SliceIndex, 0, Math.Max(0, r.SliceCount - 1), "slice_index", $"the slice this request extracts, 0 to slice_count - 1 ({Math.Max(0, r.SliceCount - 1)})");
        var entries = new List<CatalogEntry>();
        for (var i = 0; i < r.Models.Count; i++)
        {
            var m = r.Models[i];
            if (m.Model is null || string.IsNullOrEmpty(m.Model.Model)) throw StitchingException.InvalidArgument($"models[{i}].model", "is required.");
            if (m.Hooks.Count == 0) throw StitchingException.InvalidArgument($"models[{i}].hooks", "name at least one hook, e.g. blocks.3.hook_resid_pre.");
            ModelHost.ParseDType(m.Model.Dtype);
            if (!string.IsNullOrEmpty(m.Model.Device)) ModelHost.ParseDevice(m.Model.Device, $"models[{i}].model.device");
            var entry = await host.Catalog.ResolveAsync(m.Model.Model, allowDownload: false, ct);
            if (!File.Exists(Path.Combine(entry.Path, "tokenizer.json")))
                throw StitchingException.FailedPrecondition($"models[{i}].model: {entry.Name} has no tokenizer.json; extraction tokenizes the corpus with it.", $"models[{i}].model");
            var info = ModelHost.Describe(entry);
            for (var j = 0; j < m.Hooks.Count; j++)
            {
                var hook = Stitching.Models.HookPoint.Parse(m.Hooks[j], info.Layers, $"models[{i}].hooks[{j}]");
                if (!info.Hooks.Contains(hook.ToString()))
                    throw StitchingException.InvalidArgument($"models[{i}].hooks[{j}]", $"'{Check.Shorten(m.Hooks[j])}' is not a hook of {entry.Name} ({info.Layers} layers); its hooks run blocks.0.hook_resid_pre .. {info.Hooks[^1]}.");
            }
            if (info.MaxPositions > 0 && spec.ContextLength > info.MaxPositions)
                throw StitchingException.InvalidArgument("tokens.context_length", $"{spec.ContextLength} exceeds {entry.Name}'s {info.MaxPositions} positions.");
            entries.Add(entry);
        }
        return entries;
    }

    private TokenSetRows OpenTokens(ArtifactRef r) => new(new SafetensorsReader(store.OpenRead(r, TokenSet.File), $"{r.Id}/{TokenSet.File}"));

    private async Task<ArtifactRef> TokenSetAsync(ExtractRequest request, HfTokenizer tokenizer, string tokenizerHash, OperationContext context, CancellationToken ct)
    {
        var spec = new TokenSetSpec(request.Tokens ?? new TokenSetSpec());
        if (spec.ContextLength == 0) spec.ContextLength = 128;
        var identity = $"{Google.Protobuf.JsonFormatter.Default.Format(request.Corpus)}|{corpus.Version(request.Corpus)}|{tokenizerHash}|{Google.Protobuf.JsonFormatter.Default.Format(spec)}";
        var r = new ArtifactRef { Kind = ActivationSetLayout.TokenSetKind, Id = ContentIds.Of("ts-", identity) };
        if (store.Exists(r)) return r;
        using var writer = store.Create(r);
        var (rows, documents) = await Task.Run(() =>
        {
            using var columns = new TokenSetWriter(writer.StagingDirectory, spec.ContextLength);
            var built = TokenSet.Build(corpus.Documents(request.Corpus), tokenizer, spec, columns, ct);
            columns.Finish(writer.PathOf(TokenSet.File), Metadata(spec, built.Rows, built.Documents, tokenizerHash));
            return built;
        }, ct);
        foreach (var (k, v) in Metadata(spec, rows, documents, tokenizerHash)) writer.Manifest.Metadata[k] = v;
        writer.Manifest.SpecJson = identity;
        CommitOrReuse(writer);
        context.Report(new OperationProgress { Phase = "tokenize", Tokens = rows * spec.ContextLength, Message = $"{rows} rows of {spec.ContextLength} tokens" });
        return r;
    }

    private static Dictionary<string, string> Metadata(TokenSetSpec spec, long rows, long documents, string tokenizerHash) => new()
    {
        ["context"] = spec.ContextLength.ToString(), ["rows"] = rows.ToString(), ["tokens"] = (rows * spec.ContextLength).ToString(),
        ["documents"] = documents.ToString(), ["tokenizer_sha256"] = tokenizerHash, ["bos_policy"] = spec.BosPolicy.ToString(),
    };

    /// <summary>
    /// One model's ActivationSet, or this request's slice of it: slice i of N takes whole shards [i S / N, (i + 1) S / N)
    /// of the set's S shards, written under their own shard numbers. Unsliced (N = 1) the one slice is the set.
    /// </summary>
    private async Task<(ArtifactRef Ref, bool Reused, double Flops, bool Complete)> ActivationSetAsync(ExtractRequest request, int index, CatalogEntry entry,
        ArtifactRef tokenSetRef, TokenSetRows tokens, OperationContext context, double flopsBefore, CancellationToken ct)
    {
        var mh = request.Models[index];
        var dtype = ModelHost.DTypeName(ModelHost.ParseDType(mh.Model.Dtype));
        var batch = request.BatchSize == 0 ? 8 : request.BatchSize;
        var shardRows = (int)Math.Max(1, (request.ShardTokens == 0 ? 65536 : request.ShardTokens) / tokens.Context);
        var fingerprint = ModelHost.Fingerprint(entry.Path);
        using var lease = await host.AcquireAsync(mh.Model, allowDownload: false, ct);
        var loaded = lease.Model!;
        var model = loaded.Model;
        var hooks = mh.Hooks.Select((h, j) => model.ParseHook(h, $"models[{index}].hooks[{j}]")).Distinct().ToList();
        var identity = $"{tokenSetRef.Id}|{fingerprint}|{dtype}|{string.Join(",", hooks.Select(h => h.ToString()))}|{shardRows}";
        var r = new ArtifactRef { Kind = ActivationSetLayout.Kind, Id = ContentIds.Of("as-", identity) };
        if (store.Exists(r)) return (r, true, 0, true);
        var count = Math.Max(1, request.SliceCount);
        var totalShards = (int)((tokens.Rows + shardRows - 1) / shardRows);
        var firstShard = (int)((long)request.SliceIndex * totalShards / count);
        var endShard = (int)((long)(request.SliceIndex + 1) * totalShards / count);
        var sliceRef = count == 1 ? r : SliceRef(r, request.SliceIndex, count);
        if (count > 1 && store.Exists(sliceRef)) return await ComposeAsync(r, count, totalShards, true, ct);
        var (firstRow, endRow) = ((long)firstShard * shardRows, Math.Min(tokens.Rows, (long)endShard * shardRows));

        using var activity = telemetry.Source.StartActivity("activations.extract");
        activity?.SetTag(StitchingTelemetry.ModelAttribute, entry.Name);
        activity?.SetTag(StitchingTelemetry.HookAttribute, string.Join(",", hooks));
        activity?.SetTag(StitchingTelemetry.OperationAttribute, context.Id);
        activity?.SetTag(StitchingTelemetry.ArtifactAttribute, sliceRef.Id);
        var blocks = hooks.Max(h => h.Site == Stitching.Models.HookSite.ResidPre ? h.Layer : h.Layer + 1);
        blocks = Math.Min(blocks, model.Layers);
        var width = model.Width;
        var context0 = tokens.Context;
        using var writer = store.Create(sliceRef);
        var set = new ActivationSetWriter(writer, firstShard);
        var shard = new ShardBuffer(hooks.Select(h => h.ToString()).ToList(), shardRows, context0, width);
        var clock = Stopwatch.StartNew();
        double flops = 0;
        for (long row = firstRow; row < endRow;)
        {
            ct.ThrowIfCancellationRequested();
            var rows = (int)Math.Min(Math.Min(batch, endRow - row), shardRows - shard.Rows);
            var (rowIds, rowSpecial) = tokens.Read(row, rows);
            await worker.RunAsync(() =>
            {
                var ids = TorchSharp.torch.tensor(rowIds, [rows, context0]).to(TorchSharp.torch.ScalarType.Int64);
                var result = model.Forward(new Stitching.Models.Runtime.ForwardRequest { Ids = ids, Capture = hooks });
                for (var j = 0; j < hooks.Count; j++) shard.Append(j, result.Captured[hooks[j]]);
                return 0;
            }, ct);
            shard.AddRows(rowIds, rowSpecial, row);
            var spent = model.ForwardFlops(rows, context0, blocks, logits: false);
            flops += spent;
            telemetry.AddFlops(spent, activity);
            if (shard.Full) WriteShard(set, shard);
            row += rows;
            var done = row - firstRow;
            context.Report(new OperationProgress
            {
                Phase = $"extract {entry.Name} ({index + 1}/{request.Models.Count}){(count > 1 ? $", slice {request.SliceIndex + 1} of {count}" : "")}", Step = done, TotalSteps = endRow - firstRow,
                Tokens = (long)done * context0, Flops = flopsBefore + flops,
                EtaSeconds = clock.Elapsed.TotalSeconds / done * (endRow - firstRow - done),
                Metrics = { ["tokens_per_second"] = done * context0 / Math.Max(1e-9, clock.Elapsed.TotalSeconds) },
            });
        }
        if (shard.Rows > 0) WriteShard(set, shard);
        var sliceTokens = (endRow - firstRow) * context0;
        var info = new ActivationSetInfo(r.Id, entry.Name, entry.Path, fingerprint, dtype, hooks.Select(h => h.ToString()).ToList(), tokenSetRef.Id, context0, width, set.Shards, tokens.Tokens);
        var m = set.Describe(info);
        m.SpecJson = identity;
        m.Metrics["flops"] = flops;
        m.Metrics["seconds"] = clock.Elapsed.TotalSeconds;
        m.Ledger = FlopLedger.Of(new LedgerEntry(FlopLedger.Extract, flops, sliceTokens, clock.Elapsed.TotalSeconds, r.Display())).ToProto();
        m.Metrics["tokens_per_second"] = sliceTokens / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
        telemetry.RecordWork("extract", sliceTokens, flops, Directory.EnumerateFiles(writer.StagingDirectory, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length), clock.Elapsed.TotalSeconds, activity);
        if (count > 1)
        {
            m.Metadata["first_shard"] = firstShard.ToString();
            m.Metadata["slice"] = $"{request.SliceIndex}/{count}";
            CommitOrReuse(writer);
            log.LogInformation("extracted slice {Slice} of {Count} ({Tokens} tokens, shards {First}-{End}) of {Set}", request.SliceIndex, count, sliceTokens, firstShard, endShard - 1, r.Id);
            var composed = await ComposeAsync(r, count, totalShards, false, ct);
            return composed with { Flops = flops };
        }
        if (!CommitOrReuse(writer)) return (r, true, flops, true);
        log.LogInformation("extracted {Tokens} tokens x {Hooks} hooks of {Model} into {Ref} in {Seconds:F1} s", tokens.Tokens, hooks.Count, entry.Name, r.Id, clock.Elapsed.TotalSeconds);
        for (var s = 0; s < set.Shards; s++) await cache.GetFileAsync(r, ActivationSetLayout.ShardFile(s), ct); // offer to the cache
        return (r, false, flops, true);
    }

    private static ArtifactRef SliceRef(ArtifactRef set, int index, int count) => new() { Kind = ArtifactKinds.ActivationSlice, Id = $"{set.Id}-s{index}of{count}" };

    /// <summary>
    /// When every slice of <paramref name="set"/> is stored, copies their shards into the set (one commit, the manifest
    /// of an unsliced extraction with the slices' FLOPs and seconds summed) and removes the slices; otherwise leaves it
    /// to the last slice. Two slices finishing together may both compose: one commit wins, the other finds it done.
    /// </summary>
    private async Task<(ArtifactRef Ref, bool Reused, double Flops, bool Complete)> ComposeAsync(ArtifactRef set, int count, int totalShards, bool reused, CancellationToken ct)
    {
        var slices = Enumerable.Range(0, count).Select(i => SliceRef(set, i, count)).ToList();
        if (store.Exists(set)) return (set, reused, 0, true);
        if (!slices.All(store.Exists)) return (set, reused, 0, false);
        var manifests = slices.Select(store.GetManifest).ToList();
        using (var writer = store.Create(set))
        {
            foreach (var (slice, manifest) in slices.Zip(manifests))
                foreach (var file in manifest.Files)
                {
                    await using var from = store.OpenRead(slice, file.Name); // sha256-verified
                    from.Position = 0;
                    writer.WriteFile(file.Name, to => from.CopyTo(to));
                }
            var first = manifests[0];
            var info = ActivationSetLayout.Describe(first) with { Id = set.Id, Shards = totalShards };
            ActivationSetLayout.Write(writer.Manifest, info);
            writer.Manifest.SpecJson = first.SpecJson;
            double flops = manifests.Sum(x => x.Metrics.GetValueOrDefault("flops")), seconds = manifests.Sum(x => x.Metrics.GetValueOrDefault("seconds"));
            writer.Manifest.Metrics["flops"] = flops;
            writer.Manifest.Metrics["seconds"] = seconds;
            writer.Manifest.Metrics["tokens_per_second"] = info.Tokens / Math.Max(1e-9, seconds);
            writer.Manifest.Metadata["slices"] = count.ToString();
            writer.Manifest.Ledger = FlopLedger.Of(new LedgerEntry(FlopLedger.Extract, flops, info.Tokens, seconds, set.Display())).ToProto();
            if (!CommitOrReuse(writer)) return (set, true, 0, true);
        }
        foreach (var slice in slices) store.Delete(slice);
        log.LogInformation("composed {Set} from {Count} slices", set.Id, count);
        return (set, reused, 0, true);
    }

    private static void WriteShard(ActivationSetWriter set, ShardBuffer shard)
    {
        set.WriteShard(shard.Tensors());
        shard.Clear();
    }

    /// <summary>Commits; false when a concurrent job committed the same artifact first (same bytes by construction).</summary>
    private static bool CommitOrReuse(ArtifactWriter writer)
    {
        try { writer.Commit(); return true; }
        catch (StitchingException e) when (e.Kind == ErrorKind.AlreadyExists) { return false; }
    }
}
