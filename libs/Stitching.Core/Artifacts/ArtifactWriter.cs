using Stitching.Core.Errors;
using Stitching.Contracts.Common.V1;

namespace Stitching.Core.Artifacts;

/// <summary>
/// Collects the files of a new artifact in a private staging folder. Commit makes the artifact appear
/// at once, with its manifest; disposing without Commit leaves no trace.
/// </summary>
public sealed class ArtifactWriter : IDisposable
{
    private readonly ArtifactStore _store;
    private bool _committed;

    internal ArtifactWriter(ArtifactStore store, ArtifactRef r, string staging)
    {
        _store = store;
        Ref = r;
        StagingDirectory = staging;
    }

    public ArtifactRef Ref { get; }
    public string StagingDirectory { get; }
    public ArtifactManifest Manifest { get; } = new();

    /// <summary>Path inside the staging folder for a file the caller writes itself.</summary>
    public string PathOf(string file)
    {
        ArtifactIds.Validate(file, "file");
        if (file == ArtifactStore.ManifestFile)
            throw StitchingException.InvalidArgument("file", $"'{file}' is reserved for the artifact's manifest; choose another name.");
        return Path.Combine(StagingDirectory, file);
    }

    public void WriteFile(string file, Action<Stream> write)
    {
        using var fs = new FileStream(PathOf(file), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        write(fs);
        fs.Flush(flushToDisk: true);
    }

    public void WriteFile(string file, ReadOnlySpan<byte> bytes)
    {
        using var fs = new FileStream(PathOf(file), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        fs.Write(bytes);
        fs.Flush(flushToDisk: true);
    }

    public ArtifactManifest Commit()
    {
        if (_committed) throw new InvalidOperationException("artifact already committed");
        var m = _store.Commit(Ref, StagingDirectory, Manifest);
        _committed = true;
        return m;
    }

    public void Dispose()
    {
        if (!_committed && Directory.Exists(StagingDirectory)) Directory.Delete(StagingDirectory, recursive: true);
    }
}
