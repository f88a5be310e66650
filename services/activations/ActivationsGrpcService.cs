using Stitching.Core.Activations;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Options;
using Stitching.Activations.Extraction;
using Stitching.Activations.ModelHosting;
using Stitching.Activations.Runtime;
using Stitching.Contracts.Activations.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Caching;
using Stitching.Core.Compute;
using Stitching.Core.Errors;
using Stitching.Core.Operations;
using Stitching.Core.Safetensors;
using Stitching.Core.Telemetry;
using Stitching.Core.Tensors;
using Microsoft.Extensions.DependencyInjection;
using Stitching.Hosting;
using Stitching.Models.Runtime;
using Common = Stitching.Contracts.Common.V1;

namespace Stitching.Activations;

/// <summary>gRPC surface of the activations service (activations.proto documents each RPC).</summary>
public sealed class ActivationsGrpcService(ModelHost host, TorchWorker worker, ArtifactStore store, IShardCache cache,
    OperationRunner runner, IOptions<StitchingOptions> options, [FromKeyedServices("Activations")] StitchingTelemetry telemetry, Extraction.Corpus corpus)
    : ActivationsService.ActivationsServiceBase
{
    public override Task<ListModelsResponse> ListModels(ListModelsRequest request, ServerCallContext context)
    {
        var response = new ListModelsResponse();
        var loaded = host.Loaded.ToList();
        foreach (var entry in host.Catalog.List())
        {
            ModelInfo info;
            try { info = ModelHost.Describe(entry); }
            catch (StitchingException) { continue; } // unsupported or incomplete checkpoints are skipped
            if (loaded.FirstOrDefault(l => l.Entry.Path == entry.Path) is { } l) info = l.Info(info);
            response.Models.Add(info);
        }
        foreach (var l in loaded.Where(l => response.Models.All(m => m.Path != l.Entry.Path)))
            response.Models.Add(l.Info(ModelHost.Describe(l.Entry)));
        return Task.FromResult(response);
    }

    public override Task<ModelInfo> DescribeModel(DescribeModelRequest request, ServerCallContext context) =>
        host.DescribeAsync(Require(request.Model), context.CancellationToken);

    public override async Task<ModelInfo> LoadModel(LoadModelRequest request, ServerCallContext context)
    {
        using var lease = await host.AcquireAsync(Require(request.Model), request.AllowDownload, context.CancellationToken);
        var info = lease.Model!.Info(ModelHost.Describe(lease.Model.Entry));
        info.Name = request.Model.Model;
        return info;
    }

    public override async Task<UnloadModelResponse> UnloadModel(UnloadModelRequest request, ServerCallContext context) =>
        new() { Unloaded = await host.UnloadAsync(Require(request.Model), context.CancellationToken) };

    public override async Task<TokenizeResponse> Tokenize(TokenizeRequest request, ServerCallContext context)
    {
        using var lease = await host.AcquireAsync(Require(request.Model), false, context.CancellationToken);
        var tokenizer = lease.Model!.RequireTokenizer();
        var policy = BosPolicies.From(request.BosPolicy, "bos_policy");
        var response = new TokenizeResponse();
        foreach (var text in request.Texts)
        {
            var e = tokenizer.EncodeWithPolicy(text, policy);
            var t = new TokenizedText();
            t.Ids.AddRange(e.Ids);
            t.Tokens.AddRange(e.Tokens);
            t.Starts.AddRange(e.Offsets.Select(o => o.Start));
            t.Ends.AddRange(e.Offsets.Select(o => o.End));
            t.Special.AddRange(e.SpecialTokensMask.Select(s => s ? 1 : 0));
            response.Texts.Add(t);
        }
        return response;
    }

    public override async Task<DetokenizeResponse> Detokenize(DetokenizeRequest request, ServerCallContext context)
    {
        using var lease = await host.AcquireAsync(Require(request.Model), false, context.CancellationToken);
        var tokenizer = lease.Model!.RequireTokenizer();
        var bad = request.Ids.FirstOrDefault(i => i < 0 || i >= tokenizer.VocabSize, -1);
        if (bad != -1 || request.Ids.Any(i => i < 0))
            throw StitchingException.InvalidArgument("ids", $"{bad} is outside the vocabulary 0..{tokenizer.VocabSize - 1}.");
        return new DetokenizeResponse { Text = tokenizer.Decode(request.Ids, request.SkipSpecialTokens) };
    }

    public override async Task<ForwardResponse> Forward(Contracts.Activations.V1.ForwardRequest request, ServerCallContext context)
    {
        var ct = context.CancellationToken;
        // The token cap is checked on the wire shapes, before anything is decoded or loaded.
        var tokens = request.TokenIds is { } ti ? Stitching.Core.Tensors.HostTensor.Numel(ti.Shape, "token_ids")
            : request.StartResidual is { Shape.Count: >= 2 } sr ? Stitching.Core.Tensors.HostTensor.Numel(sr.Shape.Take(sr.Shape.Count - 1).ToList(), "start_residual")
            : request.Text.Length;
        var tokensField = request.TokenIds is not null ? "token_ids" : request.StartResidual is not null ? "start_residual" : "text";
        if (tokens > options.Value.MaxForwardTokens)
            throw StitchingException.ResourceExhausted($"{tokensField}: {tokens} tokens in one Forward call, over this server's {options.Value.MaxForwardTokens} (Stitching:MaxForwardTokens); split the batch, or run Extract for bulk activations.", tokensField);
        using var lease = await host.AcquireAsync(Require(request.Model), false, ct);
        var loaded = lease.Model!;
        var textIds = request.TokenIds is null && !string.IsNullOrEmpty(request.Text)
            ? loaded.RequireTokenizer().EncodeWithPolicy(request.Text, BosPolicies.From(request.BosPolicy, "bos_policy")).Ids.ToArray() : null;
        var artifacts = InterventionBuilder.ReadArtifacts(request.Interventions, store);
        using var activity = telemetry.Source.StartActivity("activations.forward");
        activity?.SetTag(StitchingTelemetry.ModelAttribute, loaded.Entry.Name);
        var response = await worker.RunAsync(() => ForwardPass.Run(loaded.Model, request, textIds, artifacts), ct);
        if (response.TokenIds is { Shape.Count: 2 } shape)
        {
            var m = loaded.Model;
            var logits = request.ReturnLogits || request.ReturnLoss || request.ReturnKl || request.TopK > 0;
            var deepest = logits ? m.Layers : request.Capture.Select(h => m.ParseHook(h)).Select(h => h.Site == Stitching.Models.HookSite.ResidPre ? h.Layer : h.Layer + 1).DefaultIfEmpty(0).Max();
            var flops = m.ForwardFlops(shape.Shape[0], (int)shape.Shape[1], Math.Max(0, Math.Min(deepest, m.Layers) - request.StartLayer), logits)
                + (request.ReturnKl ? m.ForwardFlops(shape.Shape[0], (int)shape.Shape[1], m.Layers, true) : 0);
            telemetry.AddFlops(flops, activity);
            activity?.SetTag(StitchingTelemetry.TokensAttribute, shape.Shape[0] * shape.Shape[1]);
        }
        if (response.CalculateSize() > options.Value.MaxMessageBytes)
            throw StitchingException.ResourceExhausted(
                $"the response would be {response.CalculateSize() >> 20} MiB, over the {options.Value.MaxMessageBytes >> 20} MiB message limit; capture fewer hooks or tokens, drop return_logits (use top_k), or run Extract for bulk activations.", "capture");
        return response;
    }

    public override async Task<GenerateResponse> Generate(GenerateRequest request, ServerCallContext context)
    {
        var ct = context.CancellationToken;
        var maxNew = request.MaxNewTokens == 0 ? 32 : request.MaxNewTokens;
        if (maxNew < 0) throw StitchingException.InvalidArgument("max_new_tokens", "must be positive (0 = default 32).");
        if (maxNew > options.Value.MaxGenerateTokens)
            throw StitchingException.ResourceExhausted($"max_new_tokens: {maxNew} is over this server's {options.Value.MaxGenerateTokens} (Stitching:MaxGenerateTokens); generate in shorter calls.", "max_new_tokens");
        if (request.PromptIds.Count + request.Prompt.Length > options.Value.MaxForwardTokens)
            throw StitchingException.ResourceExhausted($"prompt: longer than this server's {options.Value.MaxForwardTokens} tokens (Stitching:MaxForwardTokens).", "prompt");
        using var lease = await host.AcquireAsync(Require(request.Model), false, ct);
        var loaded = lease.Model!;
        var prompt = request.PromptIds.Count > 0 ? request.PromptIds.ToList()
            : loaded.RequireTokenizer().EncodeWithPolicy(request.Prompt, BosPolicies.From(request.BosPolicy, "bos_policy")).Ids.ToList();
        if (prompt.Any(i => i < 0 || i >= loaded.Model.VocabSize))
            throw StitchingException.InvalidArgument("prompt_ids", $"ids must lie in 0..{loaded.Model.VocabSize - 1}.");
        var artifacts = InterventionBuilder.ReadArtifacts(request.Interventions, store);
        var sampling = new SamplingOptions(maxNew, request.Temperature, request.TopK, request.TopP == 0 ? 1 : request.TopP,
            request.Seed, request.IgnoreEos ? null : loaded.Tokenizer?.EosId);
        var promptPositions = Enumerable.Range(0, prompt.Count).ToList();
        Generation.Validate(loaded.Model, prompt, sampling);
        // One torch-thread item per token: a long generation never holds the thread from other calls for long.
        var session = new GenerationSession(loaded.Model, prompt, sampling,
            _ => InterventionBuilder.Build(request.Interventions, loaded.Model, artifacts, request.InterveneOnPromptOnly ? _ => promptPositions : null));
        await worker.RunAsync(() => { InterventionBuilder.Build(request.Interventions, loaded.Model, artifacts); return 0; }, ct); // interventions fail before the first token
        try
        {
            while (!session.Done) await worker.RunAsync(() => { session.Step(); return 0; }, ct);
        }
        finally { await worker.RunAsync(() => { session.Dispose(); return 0; }, CancellationToken.None); }
        var (fresh, reason) = (session.NewIds, session.StopReason);
        var response = new GenerateResponse { Text = loaded.Tokenizer?.Decode(fresh, skipSpecialTokens: true) ?? "", StopReason = reason };
        response.PromptIds.AddRange(prompt);
        response.NewIds.AddRange(fresh);
        return response;
    }

    public override async Task<Common.Operation> Extract(ExtractRequest request, ServerCallContext context)
    {
        await ExtractHandler.ValidateAsync(request, host, context.CancellationToken);
        corpus.Version(request.Corpus); // client-named files pass the path policy now, not when the job runs
        return runner.Start(ExtractHandler.OperationKind, Any.Pack(request));
    }

    public override async Task ReadActivations(ReadActivationsRequest request, IServerStreamWriter<Common.TensorChunk> responseStream, ServerCallContext context)
    {
        var set = ActivationSetReader.Open(store, cache, request.ActivationSet, "activation_set");
        var shards = set.Info.Shards;
        var wanted = request.Shards.Count > 0 ? request.Shards.ToList() : Enumerable.Range(0, shards).ToList();
        foreach (var s in wanted)
            if (s < 0 || s >= shards) throw StitchingException.InvalidArgument("shards", $"{s} is outside 0..{shards - 1}.");
        foreach (var s in wanted)
        {
            using var shard = await set.ReadAsync(s, context.CancellationToken);
            var names = request.Names.Count > 0 ? request.Names.ToList() : shard.Reader.Entries.Select(e => e.Name).ToList();
            for (var i = 0; i < names.Count; i++)
                if (!shard.Reader.Contains(names[i]))
                    throw StitchingException.NotFound($"names[{i}]: tensor '{Check.Shorten(names[i])}' is not in activation set {set.Info.Id}; its shards hold: {string.Join(", ", shard.Reader.Entries.Select(e => e.Name))}.", "names");
            foreach (var name in names)
                foreach (var chunk in TensorCodec.ToChunks(shard.Reader.Read(name)))
                    await responseStream.WriteAsync(chunk, context.CancellationToken);
        }
    }

    /// <summary>The weight names ReadWeights serves.</summary>
    public static readonly string[] WeightNames = ["unembed.W_U"];

    public override async Task ReadWeights(ReadWeightsRequest request, IServerStreamWriter<Common.TensorChunk> responseStream, ServerCallContext context)
    {
        var ct = context.CancellationToken;
        if (request.Names.Count == 0) throw StitchingException.InvalidArgument("names", $"is empty; name the weights to read ({string.Join(", ", WeightNames)}).");
        for (var i = 0; i < request.Names.Count; i++)
            if (!WeightNames.Contains(request.Names[i]))
                throw StitchingException.InvalidArgument("names", $"names[{i}]: '{Check.Shorten(request.Names[i])}' is not a weight this service reads; it reads {string.Join(", ", WeightNames)}.");
        using var lease = await host.AcquireAsync(Require(request.Model), false, ct);
        var loaded = lease.Model!;
        foreach (var name in request.Names.Distinct())
        {
            var weight = await worker.RunAsync(() =>
            {
                using var w = loaded.Model.UnembeddingMatrix();
                if (w.numel() * 4 > Array.MaxLength)
                    throw StitchingException.ResourceExhausted($"names: {name} of {loaded.Entry.Name} is {w.numel() * 4 >> 20} MiB, over the 2 GiB one tensor stream carries.", "names");
                return TorchTensors.ToHost(w, name);
            }, ct);
            foreach (var chunk in TensorCodec.ToChunks(weight))
                await responseStream.WriteAsync(chunk, ct);
        }
    }

    private static ModelSpec Require(ModelSpec? spec) =>
        spec is null || string.IsNullOrEmpty(spec.Model)
            ? throw StitchingException.InvalidArgument("model.model", "is empty; give a model-store name, a checkpoint folder or a Hugging Face repo id (see ListModels).")
            : spec;
}
