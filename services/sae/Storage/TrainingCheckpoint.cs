using Stitching.Contracts.Common.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using Stitching.Sae.Weights;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace Stitching.Sae.Training;

/// <summary>
/// Everything a training operation needs to continue where it stopped, as an artifact of kind
/// "sae-checkpoint" with id "{operation id}-s{step}": state.safetensors (weights, Adam moments
/// "adam.m.NAME" / "adam.v.NAME", tokens_since_fired, init_W_dec) whose metadata holds step, tokens,
/// flops and the data position (window, offset), plus training_log.json, heldout_log.json and cfg.json. The data order
/// is a pure function of (seed, window), so no rng bytes are needed. Older checkpoints of the operation
/// are deleted once a newer one is committed.
/// </summary>
public sealed record TrainingCheckpoint(long Step, long Tokens, double Flops, long Window, long Offset)
{
    public const string Kind = "sae-checkpoint";
    public const string StateFile = "state.safetensors";
    public const string InitDecoderName = "init_W_dec";

    public static ArtifactRef RefOf(string operationId, long step) => new() { Kind = Kind, Id = $"{operationId}-s{step:D9}" };

    /// <summary>Writes a checkpoint of the trainer (call on the torch thread) and removes older ones.</summary>
    public void Save(ArtifactStore store, string operationId, SaeTrainer trainer, Tensor initDecoder, TrainingLog log, Evaluation.HeldOutLog heldOut)
    {
        var tensors = new List<HostTensor>(trainer.Sae.ToHost());
        foreach (var (name, (m, v)) in trainer.Optimizer.Moments)
        {
            tensors.Add(TorchTensors.ToHost(m, $"adam.m.{name}"));
            tensors.Add(TorchTensors.ToHost(v, $"adam.v.{name}"));
        }
        tensors.Add(TorchTensors.ToHost(trainer.TokensSinceFired, "tokens_since_fired"));
        tensors.Add(TorchTensors.ToHost(initDecoder, InitDecoderName));
        var metadata = new Dictionary<string, string>
        {
            ["step"] = Step.ToString(), ["tokens"] = Tokens.ToString(), ["flops"] = Flops.ToString("R"),
            ["window"] = Window.ToString(), ["offset"] = Offset.ToString(),
        };
        var r = RefOf(operationId, Step);
        if (store.Exists(r)) return;
        using (var writer = store.Create(r))
        {
            writer.WriteFile(StateFile, SafetensorsWriter.ToBytes(tensors, metadata));
            writer.WriteFile(TrainingLog.File, log.ToJson());
            writer.WriteFile(Evaluation.HeldOutLog.File, heldOut.ToJson());
            writer.WriteFile(Interop.SaeLensFormat.ConfigFile, Interop.SaeLensFormat.ConfigJson(trainer.Sae.Config));
            foreach (var (k, v) in metadata) writer.Manifest.Metadata[k] = v;
            writer.Manifest.Metadata["operation"] = operationId;
            writer.Commit();
        }
        foreach (var older in Existing(store, operationId).Where(o => o.Id != r.Id)) store.Delete(older);
    }

    /// <summary>The operation's newest checkpoint, or null when it has none.</summary>
    public static ArtifactRef? Latest(ArtifactStore store, string operationId) => Existing(store, operationId).LastOrDefault();

    private static IEnumerable<ArtifactRef> Existing(ArtifactStore store, string operationId)
    {
        var dir = Path.Combine(store.Root, Kind);
        if (!Directory.Exists(dir)) return [];
        return Directory.EnumerateDirectories(dir, $"{operationId}-s*").Select(Path.GetFileName).Order()
            .Select(id => new ArtifactRef { Kind = Kind, Id = id }).Where(store.Exists).ToList();
    }

    /// <summary>Loads a checkpoint: the trainer's state (on the torch thread) and the position to seek to.</summary>
    public static (TrainingCheckpoint Position, SaeTrainer Trainer, Tensor InitDecoder, TrainingLog Log, Evaluation.HeldOutLog HeldOut) Load(
        ArtifactStore store, ArtifactRef r, TrainerOptions options)
    {
        var config = Interop.SaeLensFormat.ParseConfig(store.ReadAllBytes(r, Interop.SaeLensFormat.ConfigFile), r.Id, "checkpoint");
        using var reader = SafetensorsReader.FromBytes(store.ReadAllBytes(r, StateFile), r.Id);
        Tensor T(string name) => TorchTensors.ToTorch(reader.Read(name));
        var sae = new SaeParameters(config, T(SaeParameters.WEncName), T(SaeParameters.BEncName), T(SaeParameters.WDecName), T(SaeParameters.BDecName),
            reader.Contains(SaeParameters.ThresholdName) ? T(SaeParameters.ThresholdName) : null);
        var md = reader.Metadata;
        var position = new TrainingCheckpoint(long.Parse(md["step"]), long.Parse(md["tokens"]), double.Parse(md["flops"]), long.Parse(md["window"]), long.Parse(md["offset"]));
        var trainer = new SaeTrainer(sae, options);
        var moments = reader.Entries.Where(e => e.Name.StartsWith("adam.m.", StringComparison.Ordinal))
            .ToDictionary(e => e.Name["adam.m.".Length..], e => (T(e.Name), T("adam.v." + e.Name["adam.m.".Length..])));
        trainer.Restore(position.Step, position.Tokens, position.Flops, T("tokens_since_fired"), moments);
        var log = TrainingLog.FromJson(store.ReadAllBytes(r, TrainingLog.File));
        var heldOut = store.GetManifest(r).Files.Any(f => f.Name == Evaluation.HeldOutLog.File)
            ? Evaluation.HeldOutLog.FromJson(store.ReadAllBytes(r, Evaluation.HeldOutLog.File)) : new Evaluation.HeldOutLog();
        return (position, trainer, T(InitDecoderName).DetachFromDisposeScope(), log, heldOut);
    }
}
