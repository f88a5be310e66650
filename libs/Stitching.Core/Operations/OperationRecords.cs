using Google.Protobuf;
using Stitching.Core.Artifacts;
using Stitching.Contracts.Common.V1;

namespace Stitching.Core.Operations;

/// <summary>
/// Operation records on disk: {store root}/_operations/{id}.pb, each replaced atomically on update.
/// The leading underscore keeps the folder out of the artifact namespace.
/// </summary>
public sealed class OperationRecords
{
    private readonly string _dir;

    public OperationRecords(ArtifactStore store)
    {
        _dir = Path.Combine(store.Root, "_operations");
        Directory.CreateDirectory(_dir);
    }

    public void Save(Operation op) => AtomicFile.WriteAllBytes(PathOf(op.Id), op.ToByteArray());

    public Operation? Load(string id)
    {
        var path = PathOf(id);
        if (!File.Exists(path)) return null;
        return Operation.Parser.ParseFrom(File.ReadAllBytes(path));
    }

    public IEnumerable<Operation> LoadAll()
    {
        foreach (var path in Directory.EnumerateFiles(_dir, "*.pb"))
        {
            Operation? op = null;
            try { op = Operation.Parser.ParseFrom(File.ReadAllBytes(path)); }
            catch (InvalidProtocolBufferException) { } // a torn record cannot happen with atomic writes; skip foreign files
            catch (IOException) { }
            if (op is not null) yield return op;
        }
    }

    private string PathOf(string id) => Path.Combine(_dir, ArtifactIds.Validate(id, "id") + ".pb");
}
