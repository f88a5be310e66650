using System.Text.Json;
using System.Text.Json.Nodes;
using Stitching.Core.Errors;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using Stitching.Sae.Architectures;
using Stitching.Sae.Weights;

namespace Stitching.Sae.Interop;

/// <summary>
/// SAELens on-disk format, also how the store keeps our SAEs: cfg.json + sae_weights.safetensors with
/// W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in] and threshold [d_sae] for
/// jumprelu / batchtopk. cfg.json is written in the current nested layout (architecture, d_in, d_sae, k,
/// apply_b_dec_to_input, normalize_activations, metadata {model_name, hook_name}); the older flat layout
/// (model_name / hook_name / hook_point at top level, activation_fn_str "topk" with activation_fn_kwargs.k)
/// is accepted on read. An SAE trained with input scaling carries normalize_activations
/// "expected_average_only_in" and its factor as scaling_factor; <see cref="Fold"/> writes the same
/// function with normalize_activations "none" (what SAELens itself saves), for tools that ignore the key.
/// </summary>
public static class SaeLensFormat
{
    public const string ConfigFile = "cfg.json";
    public const string WeightsFile = "sae_weights.safetensors";

    public static byte[] ConfigJson(SaeConfig c)
    {
        var arch = SaeArchitectures.Get(c.Architecture, "architecture");
        var cfg = new JsonObject
        {
            ["architecture"] = arch.Name,
            ["d_in"] = c.DIn,
            ["d_sae"] = c.DSae,
            ["dtype"] = "float32",
            ["device"] = "cpu",
            ["apply_b_dec_to_input"] = c.ApplyBDecToInput,
            ["normalize_activations"] = c.ScalingFactor == 1 ? SaeConfig.NoNormalization : SaeConfig.ExpectedAverageOnlyIn,
            ["reshape_activations"] = "none",
            ["metadata"] = new JsonObject { ["model_name"] = c.Model, ["hook_name"] = c.Hook },
        };
        if (arch.UsesK) cfg["k"] = c.K;
        // Inputs are multiplied by this factor before encoding and reconstructions divided by it.
        if (c.ScalingFactor != 1) cfg["scaling_factor"] = c.ScalingFactor;
        // Training-only settings, kept so a warm start reuses them; SAELens ignores unknown keys on load.
        if (c.SparsityCoefficient != 0) cfg["sparsity_coefficient"] = c.SparsityCoefficient;
        if (c.Bandwidth != 0) cfg["bandwidth"] = c.Bandwidth;
        return JsonSerializer.SerializeToUtf8Bytes(cfg, new JsonSerializerOptions { WriteIndented = true });
    }

    public static byte[] WeightsBytes(SaeParameters sae) => SafetensorsWriter.ToBytes(sae.ToHost());

    /// <summary>Writes cfg.json and sae_weights.safetensors into a folder (created if needed).</summary>
    public static IReadOnlyList<string> WriteFolder(string folder, SaeParameters sae)
    {
        Directory.CreateDirectory(folder);
        Core.Artifacts.AtomicFile.WriteAllBytes(Path.Combine(folder, ConfigFile), ConfigJson(sae.Config));
        Core.Artifacts.AtomicFile.WriteAllBytes(Path.Combine(folder, WeightsFile), WeightsBytes(sae));
        return [ConfigFile, WeightsFile];
    }

    /// <summary>The same SAE with its input scaling folded into the weights (normalize_activations "none").</summary>
    public static SaeParameters Fold(SaeParameters sae) => sae.WithScalingFactor(1);

    public static SaeParameters ReadFolder(string folder, string field = "path")
    {
        var cfg = Path.Combine(folder, ConfigFile);
        var weights = Path.Combine(folder, WeightsFile);
        if (!File.Exists(cfg) || !File.Exists(weights))
            throw StitchingException.NotFound($"{folder} is not an SAELens folder: it needs {ConfigFile} and {WeightsFile}.", field);
        return Read(File.ReadAllBytes(cfg), File.ReadAllBytes(weights), folder, field);
    }

    public static SaeParameters Read(byte[] configJson, byte[] weights, string source, string field)
    {
        var config = ParseConfig(configJson, source, field);
        using var reader = SafetensorsReader.FromBytes(weights, $"{source}/{WeightsFile}");
        var arch = SaeArchitectures.Get(config.Architecture, field);
        var t = (string name) => TensorIO.Require(reader, name, field);
        var sae = new SaeParameters(config, t(SaeParameters.WEncName), t(SaeParameters.BEncName), t(SaeParameters.WDecName), t(SaeParameters.BDecName),
            arch.UsesThreshold ? t(SaeParameters.ThresholdName) : null);
        TensorIO.CheckShapes(sae, source, field);
        return sae;
    }

    /// <summary>Parses either cfg.json layout into a <see cref="SaeConfig"/>.</summary>
    public static SaeConfig ParseConfig(byte[] json, string source, string field)
    {
        JsonObject cfg;
        try { cfg = JsonNode.Parse(json)?.AsObject() ?? throw new JsonException("empty"); }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw StitchingException.InvalidArgument(field, $"{source}/{ConfigFile} is not a JSON object ({e.Message}).");
        }
        var meta = cfg["metadata"] as JsonObject;
        string Str(string key) => (meta?[key] ?? cfg[key])?.GetValue<string>() ?? "";
        var activation = cfg["activation_fn_str"]?.GetValue<string>();
        var architecture = cfg["architecture"]?.GetValue<string>() ?? "standard";
        // Flat layout: "standard" architecture with a top-k activation function means topk.
        if (architecture == "standard" && activation == "topk") architecture = "topk";
        var k = cfg["k"]?.GetValue<double>() ?? (cfg["activation_fn_kwargs"] as JsonObject)?["k"]?.GetValue<double>() ?? 0;
        var dIn = cfg["d_in"]?.GetValue<int>() ?? throw StitchingException.InvalidArgument(field, $"{source}/{ConfigFile} has no d_in.");
        var dSae = cfg["d_sae"]?.GetValue<int>() ?? throw StitchingException.InvalidArgument(field, $"{source}/{ConfigFile} has no d_sae.");
        var normalize = cfg["normalize_activations"]?.GetValue<string>() ?? "none";
        var scale = cfg["scaling_factor"]?.GetValue<double>() ?? 1;
        if (normalize is "" or SaeConfig.NoNormalization) scale = 1;
        else if (normalize != SaeConfig.ExpectedAverageOnlyIn || cfg["scaling_factor"] is null || !(scale > 0) || double.IsInfinity(scale))
            throw StitchingException.InvalidArgument(field, $"{source}/{ConfigFile} has normalize_activations '{normalize}'" +
                (normalize == SaeConfig.ExpectedAverageOnlyIn ? " without a positive scaling_factor; add the factor, or fold it into the weights and write 'none'." : "; supported: 'none', or 'expected_average_only_in' with scaling_factor."));
        var hook = Str("hook_name");
        return new SaeConfig(SaeArchitectures.Get(architecture, field).Name, dIn, dSae, (int)k,
            cfg["apply_b_dec_to_input"]?.GetValue<bool>() ?? true,
            Str("model_name"), string.IsNullOrEmpty(hook) ? Str("hook_point") : hook,
            cfg["sparsity_coefficient"]?.GetValue<double>() ?? 0, cfg["bandwidth"]?.GetValue<double>() ?? 0,
            scale == 1 ? SaeConfig.NoNormalization : SaeConfig.ExpectedAverageOnlyIn, scale);
    }
}
