using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Sae.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Compute;
using Stitching.Core.Errors;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using Stitching.Sae.Interop;
using Stitching.Sae.Weights;
using Stitching.Sae.Training;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

using FlopLedger = Stitching.Core.Compute.FlopLedger;
using LedgerEntry = Stitching.Core.Compute.LedgerEntry;

namespace Stitching.Sae.Storage;

/// <summary>
/// SAEs in the store: artifacts of kind "sae" in SAELens format (cfg.json + sae_weights.safetensors),
/// optionally with training_log.json, heldout_log.json and init_decoder.safetensors (W_dec at step 0).
/// </summary>
public static class SaeArtifacts
{
    public const string Kind = ArtifactKinds.Sae;
    public const string InitDecoderFile = "init_decoder.safetensors";

    /// <summary>Writes a new "sae" artifact; returns what Describe would answer.</summary>
    public static SaeInfo Save(ArtifactStore store, ArtifactRef r, SaeParameters sae, IReadOnlyDictionary<string, double>? metrics = null,
        IReadOnlyDictionary<string, string>? metadata = null, TrainingLog? log = null, Tensor? initDecoder = null, string specJson = "",
        Evaluation.HeldOutLog? heldOut = null, FlopLedger? ledger = null)
    {
        using var writer = store.Create(r);
        writer.WriteFile(SaeLensFormat.ConfigFile, SaeLensFormat.ConfigJson(sae.Config));
        writer.WriteFile(SaeLensFormat.WeightsFile, SaeLensFormat.WeightsBytes(sae));
        if (log is not null) writer.WriteFile(TrainingLog.File, log.ToJson());
        if (heldOut is { Rows.Count: > 0 }) writer.WriteFile(Evaluation.HeldOutLog.File, heldOut.ToJson());
        if (initDecoder is not null) writer.WriteFile(InitDecoderFile, SafetensorsWriter.ToBytes([TorchTensors.ToHost(initDecoder, SaeParameters.WDecName)]));
        writer.Manifest.Metadata["architecture"] = sae.Config.Architecture;
        writer.Manifest.Metadata["model"] = sae.Config.Model;
        writer.Manifest.Metadata["hook"] = sae.Config.Hook;
        writer.Manifest.Metadata["d_in"] = sae.Config.DIn.ToString();
        writer.Manifest.Metadata["d_sae"] = sae.Config.DSae.ToString();
        foreach (var (k, v) in metadata ?? new Dictionary<string, string>()) writer.Manifest.Metadata[k] = v;
        foreach (var (k, v) in metrics ?? new Dictionary<string, double>()) writer.Manifest.Metrics[k] = v;
        writer.Manifest.SpecJson = specJson;
        if (ledger is not null) writer.Manifest.Ledger = ledger.ToProto();
        return Describe(writer.Commit(), sae.Config);
    }

    public static SaeParameters Load(ArtifactStore store, ArtifactRef r, string field)
    {
        RequireSae(store, r, field);
        return SaeLensFormat.Read(store.ReadAllBytes(r, SaeLensFormat.ConfigFile), store.ReadAllBytes(r, SaeLensFormat.WeightsFile), r.Id, field);
    }

    public static SaeInfo Describe(ArtifactStore store, ArtifactRef r, string field)
    {
        RequireSae(store, r, field);
        return Describe(store.GetManifest(r), SaeLensFormat.ParseConfig(store.ReadAllBytes(r, SaeLensFormat.ConfigFile), r.Id, field));
    }

    public static TrainingLog? Log(ArtifactStore store, ArtifactRef r) =>
        store.GetManifest(r).Files.Any(f => f.Name == TrainingLog.File) ? TrainingLog.FromJson(store.ReadAllBytes(r, TrainingLog.File)) : null;

    public static Evaluation.HeldOutLog? HeldOut(ArtifactStore store, ArtifactRef r) =>
        store.GetManifest(r).Files.Any(f => f.Name == Evaluation.HeldOutLog.File) ? Evaluation.HeldOutLog.FromJson(store.ReadAllBytes(r, Evaluation.HeldOutLog.File)) : null;

    public static Tensor? InitDecoder(ArtifactStore store, ArtifactRef r)
    {
        if (!store.GetManifest(r).Files.Any(f => f.Name == InitDecoderFile)) return null;
        using var reader = SafetensorsReader.FromBytes(store.ReadAllBytes(r, InitDecoderFile), r.Id);
        return TorchTensors.ToTorch(reader.Read(SaeParameters.WDecName));
    }

    private static SaeInfo Describe(ArtifactManifest m, SaeConfig c)
    {
        var info = new SaeInfo
        {
            Ref = m.Ref, Architecture = c.Architecture, DIn = c.DIn, DSae = c.DSae, K = c.K,
            ApplyBDecToInput = c.ApplyBDecToInput, Model = c.Model, Hook = c.Hook,
            NormalizeActivations = c.NormalizeActivations, ScalingFactor = c.ScalingFactor,
        };
        info.Metrics.Add(m.Metrics);
        info.Metadata.Add(m.Metadata);
        info.Ledger = m.Ledger().ToProto();
        return info;
    }

    public const string HowToMake = "train, transfer or import one first.";

    private static void RequireSae(ArtifactStore store, ArtifactRef? r, string field) => store.Require(r, Kind, field, HowToMake);
}
