using Stitching.Contracts.Activations.V1;
using Stitching.Core.Errors;
using Stitching.Core.Metrics;
using Stitching.Core.Tensors;
using Stitching.Models.Runtime;
using static TorchSharp.torch;
using Proto = Stitching.Contracts.Common.V1;

namespace Stitching.Activations.Runtime;

/// <summary>The Forward RPC's computation, on the torch thread: decode inputs, run, encode outputs.</summary>
public static class ForwardPass
{
    public static ForwardResponse Run(CausalLm model, Contracts.Activations.V1.ForwardRequest request, int[]? textIds, IReadOnlyDictionary<string, HostTensor> artifacts)
    {
        Tensor? ids = null;
        if (request.TokenIds is not null)
        {
            var host = TensorCodec.FromProto(request.TokenIds, "token_ids");
            if (host.DType is not (DType.I32 or DType.I64)) throw StitchingException.InvalidArgument("token_ids", $"dtype {host.DType} must be I32 or I64.");
            ids = TorchTensors.ToTorch(host).to(ScalarType.Int64);
            if (ids.dim() == 1) ids = ids.unsqueeze(0);
        }
        else if (textIds is not null) ids = tensor(textIds.Select(i => (long)i).ToArray(), [1, textIds.Length]);
        Tensor? start = request.StartResidual is null ? null : TorchTensors.ToTorchFloat(TensorCodec.FromProto(request.StartResidual, "start_residual"), "start_residual");
        if (start is not null && start.dim() == 2) start = start.unsqueeze(0);
        if (ids is null && start is null) throw StitchingException.InvalidArgument("token_ids", "give token_ids, text or start_residual.");
        if ((request.ReturnLoss || request.ReturnKl) && ids is null)
            throw StitchingException.InvalidArgument("token_ids", "return_loss and return_kl need the token ids (targets) as well as start_residual.");
        if (request.TopK < 0 || request.TopK > model.VocabSize) throw StitchingException.InvalidArgument("top_k", $"must lie in 0..{model.VocabSize}.");

        var capture = request.Capture.Select((h, i) => model.ParseHook(h, $"capture[{i}]")).ToList();
        var interventions = InterventionBuilder.Build(request.Interventions, model, artifacts);
        var needLogits = request.ReturnLogits || request.ReturnLoss || request.ReturnKl || request.TopK > 0;
        var run = model.Forward(new Stitching.Models.Runtime.ForwardRequest
        {
            Ids = start is null ? ids : null, Capture = capture, Interventions = interventions, Logits = needLogits,
            StartLayer = request.StartLayer, StartResidual = start,
        });
        var response = new ForwardResponse();
        foreach (var h in capture) response.Captured.Add(Encode(run.Captured[h].to(ScalarType.Float32), h.ToString()));
        if (ids is not null) response.TokenIds = Encode(ids, "token_ids");
        if (run.Logits is not { } logits) return response;
        if (request.ReturnLogits) response.Logits = Encode(logits.to(ScalarType.Float32), "logits");
        if (request.ReturnLoss)
        {
            var loss = LanguageModelMetrics.NextTokenLoss(logits, ids!);
            response.Loss = Encode(loss, "loss");
            response.MeanLoss = loss.mean().item<float>();
        }
        if (request.ReturnKl)
        {
            var clean = model.Forward(new Stitching.Models.Runtime.ForwardRequest { Ids = ids, Logits = true }).Logits!;
            var kl = LanguageModelMetrics.KlFromClean(clean, logits);
            response.Kl = Encode(kl, "kl");
            response.MeanKl = kl.mean().item<float>();
            response.CleanMeanLoss = LanguageModelMetrics.NextTokenLoss(clean, ids!).mean().item<float>();
        }
        if (request.TopK > 0)
        {
            var (values, indices) = logits.to(ScalarType.Float32).topk(request.TopK);
            response.TopKIds = Encode(indices, "top_k_ids");
            response.TopKLogits = Encode(values, "top_k_logits");
        }
        return response;
    }

    private static Proto.Tensor Encode(Tensor t, string name) => TensorCodec.ToProto(TorchTensors.ToHost(t, name));
}
