using Google.Protobuf;
using Stitching.Contracts.Eval.V1;
using Stitching.Core.Artifacts;

namespace Stitching.Eval.Experiments;

/// <summary>
/// Stage records of experiments: {store root}/_stages/{key}.pb, each replaced atomically. A key is the SHA-256 of the
/// stage's name and its canonical inputs (the request it sends, whose artifact ids are content ids themselves), so
/// equal work has one record whichever experiment, attempt or sweep point asks for it. The leading underscore keeps
/// the folder out of the artifact namespace.
/// </summary>
public sealed class StageLedger
{
    private readonly string _dir;

    public StageLedger(ArtifactStore store)
    {
        _dir = Path.Combine(store.Root, "_stages");
        Directory.CreateDirectory(_dir);
    }

    /// <summary>SHA-256 of the stage name, the inputs' type and their binary encoding (deterministic for the map-free requests stages send).</summary>
    public static string Key(string stage, IMessage inputs)
    {
        var head = System.Text.Encoding.UTF8.GetBytes(stage + "\n" + inputs.Descriptor.FullName + "\n");
        return ContentIds.Sha256Hex([.. head, .. inputs.ToByteArray()]);
    }

    public StageRecord? Load(string key)
    {
        var path = PathOf(key);
        if (!File.Exists(path)) return null;
        try { return StageRecord.Parser.ParseFrom(File.ReadAllBytes(path)); }
        catch (InvalidProtocolBufferException) { return null; } // written atomically, so only a foreign file; the stage runs again
    }

    public void Save(StageRecord record) => AtomicFile.WriteAllBytes(PathOf(record.Key), record.ToByteArray());

    private string PathOf(string key) => Path.Combine(_dir, ArtifactIds.Validate(key, "key") + ".pb");
}
