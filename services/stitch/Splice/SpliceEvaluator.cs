using System.Diagnostics;
using System.Runtime.InteropServices;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Stitch.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Compute;
using Stitching.Core.Errors;
using Stitching.Core.Metrics;
using Stitching.Core.Tensors;
using Stitching.Stitch.Artifacts;
using Stitching.Stitch.Fitting;
using static TorchSharp.torch;
using Proto = Stitching.Contracts.Common.V1;

namespace Stitching.Stitch.Splice;

/// <summary>
/// Spliced evaluation (paper section 3, Table 1) through the activations service's Forward. Per batch:
/// clean A and B (capturing resid_pre at the splice points); A->B starts B at l_B from T_up(h_A); B->A
/// starts A at l_A from T_down(h_B); the round trips rewrite a model's own stream with the stitch's
/// affine chain; the floors zero- and mean-ablate the finishing model's splice point (the mean over all
/// evaluated tokens). Every CE is the token-weighted mean of Forward's mean_loss over the batches.
/// </summary>
public sealed class SpliceEvaluator(ActivationsConnection activations, ArtifactStore store, TorchWorker worker)
{
    public async Task<EvaluateSpliceResponse> EvaluateAsync(EvaluateSpliceRequest r, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        Require(r.ModelA, "model_a");
        Require(r.ModelB, "model_b");
        if (r.LayerA < 0 || r.LayerB < 0) throw StitchingException.InvalidArgument(r.LayerA < 0 ? "layer_a" : "layer_b", "must be >= 0.");
        var stitchTensors = StitchArtifact.Read(store, r.Stitch, "stitch");
        var client = activations.Client;
        var rows = await TokenRowsAsync(client, r, ct);
        var batch = r.BatchSize == 0 ? 8 : r.BatchSize;
        var (hookA, hookB) = ($"blocks.{r.LayerA}.hook_resid_pre", $"blocks.{r.LayerB}.hook_resid_pre");
        var batches = rows.Chunk(batch).Select(Ids).ToList();

        // pass 1: clean runs and the captures the splices start from
        var clean = new List<(ForwardResponse A, ForwardResponse B)>();
        foreach (var ids in batches)
            clean.Add((await client.ForwardAsync(new ForwardRequest { Model = r.ModelA, TokenIds = ids, Capture = { hookA }, ReturnLoss = true }, cancellationToken: ct),
                       await client.ForwardAsync(new ForwardRequest { Model = r.ModelB, TokenIds = ids, Capture = { hookB }, ReturnLoss = true }, cancellationToken: ct)));
        // A stitch between other widths would reach libtorch as a shape error: refuse it here.
        var pUp = stitchTensors.First(t => t.Name == "P_up");
        var (widthA, widthB) = (clean[0].A.Captured[0].Shape[^1], clean[0].B.Captured[0].Shape[^1]);
        if (pUp.Shape.Length != 2 || pUp.Shape[0] != widthA || pUp.Shape[1] != widthB)
            throw StitchingException.FailedPrecondition($"the stitch maps width {pUp.Shape[0]} -> {pUp.Shape[^1]}, but {hookA} of model_a has width {widthA} and {hookB} of model_b width {widthB}; fit a stitch between these models and layers.", "stitch");
        var (meanA, meanB) = await worker.RunAsync(() => (MeanOf(clean.Select(c => c.A.Captured[0])), MeanOf(clean.Select(c => c.B.Captured[0]))), ct);

        var ce = new Dictionary<string, Mean>();
        void Add(string key, ForwardResponse f, long tokens) { if (!ce.TryGetValue(key, out var m)) ce[key] = m = new Mean(); m.Add(f.MeanLoss, tokens); }
        for (var i = 0; i < batches.Count; i++)
        {
            var ids = batches[i];
            var tokens = ids.Shape[0] * (ids.Shape[1] - 1);
            var (cleanA, cleanB) = clean[i];
            Add("A", cleanA, tokens);
            Add("B", cleanB, tokens);
            var (up, down) = await worker.RunAsync(() =>
            {
                var s = StitchArtifact.FromHost(stitchTensors, "stitch");
                return (Encode(s.Up(Decode(cleanA.Captured[0]))), Encode(s.Down(Decode(cleanB.Captured[0]))));
            }, ct);
            Add("A->B", await Forward(client, r.ModelB, ids, ct, start: (r.LayerB, up)), tokens);
            Add("B->A", await Forward(client, r.ModelA, ids, ct, start: (r.LayerA, down)), tokens);
            Add("A->B->A", await Forward(client, r.ModelA, ids, ct, RoundTrip(r.Stitch, hookA, up: true)), tokens);
            Add("B->A->B", await Forward(client, r.ModelB, ids, ct, RoundTrip(r.Stitch, hookB, up: false)), tokens);
            Add("zero A", await Forward(client, r.ModelA, ids, ct, new Intervention { Hook = hookA, Ablate = new Ablate() }), tokens);
            Add("zero B", await Forward(client, r.ModelB, ids, ct, new Intervention { Hook = hookB, Ablate = new Ablate() }), tokens);
            Add("mean A", await Forward(client, r.ModelA, ids, ct, new Intervention { Hook = hookA, Ablate = new Ablate { Mean = meanA } }), tokens);
            Add("mean B", await Forward(client, r.ModelB, ids, ct, new Intervention { Hook = hookB, Ablate = new Ablate { Mean = meanB } }), tokens);
        }
        var response = new EvaluateSpliceResponse { Sequences = rows.Count, Tokens = rows.Sum(x => (long)x.Length), Seconds = clock.Elapsed.TotalSeconds };
        foreach (var (run, finisher) in new[] { ("A", "A"), ("B", "B"), ("A->B", "B"), ("B->A", "A"), ("A->B->A", "A"), ("B->A->B", "B") })
        {
            var row = new SpliceRow
            {
                Run = run, Finisher = finisher, Ce = ce[run].Value, CleanCe = ce[finisher].Value,
                ZeroAblationCe = ce["zero " + finisher].Value, MeanAblationCe = ce["mean " + finisher].Value,
            };
            row.LossRecovered = LanguageModelMetrics.LossRecovered(row.CleanCe, row.Ce, row.MeanAblationCe);
            response.Rows.Add(row);
        }
        return response;
    }

    private static async Task<ForwardResponse> Forward(ActivationsService.ActivationsServiceClient client, ModelSpec model, Proto.Tensor ids, CancellationToken ct,
        Intervention? intervention = null, (int Layer, Proto.Tensor Residual)? start = null)
    {
        var request = new ForwardRequest { Model = model, TokenIds = ids, ReturnLoss = true };
        if (intervention is not null) request.Interventions.Add(intervention);
        if (start is { } s) { request.StartLayer = s.Layer; request.StartResidual = s.Residual; }
        return await client.ForwardAsync(request, cancellationToken: ct);
    }

    /// <summary>A -> B -> A at A's hook (P_up then P_down), or B -> A -> B at B's hook.</summary>
    private static Intervention RoundTrip(Proto.ArtifactRef stitch, string hook, bool up) => new()
    {
        Hook = hook,
        ArtifactAffine = new ArtifactAffineChain
        {
            Artifact = stitch, File = StitchArtifact.File,
            Matrices = { up ? "P_up" : "P_down", up ? "P_down" : "P_up" }, Biases = { up ? "b_up" : "b_down", up ? "b_down" : "b_up" },
        },
    };

    private static async Task<List<int[]>> TokenRowsAsync(ActivationsService.ActivationsServiceClient client, EvaluateSpliceRequest r, CancellationToken ct)
    {
        var maxRows = r.MaxRows == 0 ? 64 : r.MaxRows;
        if (r.TokenIds is not null)
        {
            var host = TensorCodec.FromProto(r.TokenIds, "token_ids");
            if (host.Shape.Length != 2 || host.Shape[1] < 2 || host.Shape[0] == 0)
                throw StitchingException.InvalidArgument("token_ids", $"shape [{string.Join(", ", host.Shape)}] must be [rows, T] with rows >= 1 and T >= 2.");
            var ids = host.DType switch
            {
                Core.Tensors.DType.I32 => MemoryMarshal.Cast<byte, int>(host.Data.Span).ToArray(),
                Core.Tensors.DType.I64 => MemoryMarshal.Cast<byte, long>(host.Data.Span).ToArray().Select(v => (int)v).ToArray(),
                _ => throw StitchingException.InvalidArgument("token_ids", $"dtype {host.DType} must be I32 or I64."),
            };
            return ids.Chunk((int)host.Shape[1]).Take(maxRows).ToList();
        }
        if (r.Texts.Count == 0) throw StitchingException.InvalidArgument("texts", "give held-out texts or token_ids.");
        var context = r.ContextLength == 0 ? 64 : r.ContextLength;
        if (context < 2) throw StitchingException.InvalidArgument("context_length", "must be at least 2 (default 64).");
        var tokenized = await client.TokenizeAsync(new TokenizeRequest { Model = r.ModelA.Model, Texts = { r.Texts }, BosPolicy = BosPolicy.Never }, cancellationToken: ct);
        var rows = tokenized.Texts.SelectMany(t => t.Ids).Chunk(context).Where(c => c.Length == context).Take(maxRows).ToList();
        if (rows.Count == 0) throw StitchingException.InvalidArgument("texts", $"give fewer than {context} tokens; add text or lower context_length.");
        return rows;
    }

    private static Proto.Tensor Ids(int[][] rows) =>
        TensorCodec.ToProto(new HostTensor("token_ids", Core.Tensors.DType.I32, [rows.Length, rows[0].Length], MemoryMarshal.AsBytes(rows.SelectMany(x => x).ToArray().AsSpan()).ToArray()));

    private static Tensor Decode(Proto.Tensor t) => TorchTensors.ToTorchFloat(TensorCodec.FromProto(t), t.Name);
    private static Proto.Tensor Encode(Tensor t) => TensorCodec.ToProto(TorchTensors.ToHost(t, "residual"));

    /// <summary>Mean over every captured token, [d].</summary>
    private static Proto.Tensor MeanOf(IEnumerable<Proto.Tensor> captured)
    {
        var all = cat(captured.Select(c => { var x = Decode(c); return x.reshape(-1, x.shape[^1]); }).ToList(), 0);
        return Encode(all.to(ScalarType.Float64).mean([0]).to(ScalarType.Float32));
    }

    private static void Require(ModelSpec? m, string field)
    {
        if (m is null || string.IsNullOrEmpty(m.Model)) throw StitchingException.InvalidArgument(field + ".model", "is required; name a model (see ActivationsService.ListModels).");
    }

    /// <summary>Token-weighted running mean.</summary>
    private sealed class Mean
    {
        private double _sum;
        private long _count;
        public void Add(double value, long count) { _sum += value * count; _count += count; }
        public double Value => _sum / _count;
    }
}
