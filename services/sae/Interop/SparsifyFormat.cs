using System.Text.Json.Nodes;
using Stitching.Core.Errors;
using Stitching.Core.Safetensors;
using Stitching.Sae.Weights;

namespace Stitching.Sae.Interop;

/// <summary>
/// EleutherAI sparsify checkpoints (one folder per hookpoint): cfg.json (k, num_latents or
/// expansion_factor, d_in) and sae.safetensors with encoder.weight [M, d_in], encoder.bias [M],
/// W_dec [M, d_in], b_dec [d_in]. sparsify encodes top-k of ReLU((x - b_dec) encoder.weight^T + encoder.bias),
/// so the import is a topk SAE with W_enc = encoder.weight^T and apply_b_dec_to_input = true.
/// </summary>
public static class SparsifyFormat
{
    public const string WeightsFile = "sae.safetensors";

    public static SaeParameters ReadFolder(string folder, string model = "", string hook = "", string field = "path")
    {
        var cfgPath = Path.Combine(folder, SaeLensFormat.ConfigFile);
        var weightsPath = Path.Combine(folder, WeightsFile);
        if (!File.Exists(cfgPath) || !File.Exists(weightsPath))
            throw StitchingException.NotFound($"{folder} is not a sparsify checkpoint: it needs {SaeLensFormat.ConfigFile} and {WeightsFile}.", field);
        var cfg = JsonNode.Parse(File.ReadAllBytes(cfgPath))?.AsObject()
            ?? throw StitchingException.InvalidArgument(field, $"{cfgPath} is not a JSON object.");
        if (cfg["skip_connection"]?.GetValue<bool>() == true)
            throw StitchingException.InvalidArgument(field, $"{cfgPath} has skip_connection = true; transcoders with a skip connection are not SAEs and cannot be imported.");
        if (cfg["multi_topk"]?.GetValue<bool>() == true)
            throw StitchingException.InvalidArgument(field, $"{cfgPath} has multi_topk = true; only plain top-k checkpoints can be imported.");
        var k = cfg["k"]?.GetValue<int>() ?? throw StitchingException.InvalidArgument(field, $"{cfgPath} has no k.");
        using var reader = SafetensorsReader.Open(weightsPath);
        var encoder = TensorIO.Require(reader, "encoder.weight", field);
        var (m, d) = ((int)encoder.shape[0], (int)encoder.shape[1]);
        var config = new SaeConfig("topk", d, m, k, ApplyBDecToInput: true, Model: model, Hook: hook);
        var sae = new SaeParameters(config, encoder.t().contiguous(), TensorIO.Require(reader, "encoder.bias", field),
            TensorIO.Require(reader, "W_dec", field), TensorIO.Require(reader, "b_dec", field), null);
        TensorIO.CheckShapes(sae, weightsPath, field);
        return sae;
    }
}
