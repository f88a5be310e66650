using System.Collections.Concurrent;
using System.Security.Cryptography;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;
using Stitching.Core.Errors;
using Stitching.Contracts.Common.V1;

namespace Stitching.Core.Artifacts;

/// <summary>
/// Durable, immutable artifacts on disk: {root}/{kind}/{id}/ holds the files and manifest.json (file
/// sizes and sha256). An artifact appears atomically (staged in {root}/.staging, then one directory
/// rename) and is never modified afterwards. Reads verify sha256 once per file version per process.
/// </summary>
public sealed class ArtifactStore
{
    public const string ManifestFile = "manifest.json";
    private static readonly JsonFormatter Json = new(JsonFormatter.Settings.Default.WithIndentation().WithFormatDefaultValues(false));
    private readonly ConcurrentDictionary<string, (long Length, DateTime Mtime)> _verified = new();
    private readonly ILogger? _log;

    public ArtifactStore(string root, ILogger<ArtifactStore>? log = null)
    {
        Root = Path.GetFullPath(root);
        _log = log;
        Directory.CreateDirectory(Root);
        Directory.CreateDirectory(StagingRoot);
        CleanStaging(TimeSpan.FromHours(1));
    }

    /// <summary>
    /// Removes staging folders left by writers that died (a crash, kill -9) and were not touched for
    /// <paramref name="age"/>: younger ones may belong to a live writer in another host on a shared store.
    /// </summary>
    public int CleanStaging(TimeSpan age)
    {
        var removed = 0;
        foreach (var dir in Directory.EnumerateDirectories(StagingRoot))
        {
            try
            {
                var touched = Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories).Select(File.GetLastWriteTimeUtc)
                    .Append(Directory.GetLastWriteTimeUtc(dir)).Max();
                if (DateTime.UtcNow - touched < age) continue;
                Directory.Delete(dir, recursive: true);
                removed++;
            }
            catch (IOException) { } // a writer finished or removed it meanwhile
            catch (UnauthorizedAccessException) { }
        }
        if (removed > 0) _log?.LogInformation("removed {Count} abandoned staging folders from {Staging}", removed, StagingRoot);
        return removed;
    }

    public string Root { get; }
    private string StagingRoot => Path.Combine(Root, ".staging");

    public string DirectoryOf(ArtifactRef r)
    {
        ArtifactIds.Validate(r);
        return Path.Combine(Root, r.Kind, r.Id);
    }

    public bool Exists(ArtifactRef r) => File.Exists(Path.Combine(DirectoryOf(r), ManifestFile));

    /// <summary>
    /// The manifest of an artifact a request names in <paramref name="field"/>, which must be of
    /// <paramref name="kind"/>: INVALID_ARGUMENT when the ref is missing, unsafe or of another kind,
    /// NOT_FOUND when it does not exist (the message ends with <paramref name="howToMake"/>).
    /// </summary>
    public ArtifactManifest Require(ArtifactRef? r, string kind, string field, string howToMake)
    {
        if (r is null || (string.IsNullOrEmpty(r.Kind) && string.IsNullOrEmpty(r.Id)))
            throw StitchingException.InvalidArgument(field, $"is missing; name an artifact of kind \"{kind}\" (kind and id).");
        ArtifactIds.Validate(r, field);
        if (r.Kind != kind) throw StitchingException.InvalidArgument(field + ".kind", $"is '{r.Kind}'; give an artifact of kind \"{kind}\".");
        if (!Exists(r)) throw StitchingException.NotFound($"{field}: {kind} {r.Id} does not exist; {howToMake}", field);
        return GetManifest(r);
    }

    public ArtifactManifest GetManifest(ArtifactRef r)
    {
        var path = Path.Combine(DirectoryOf(r), ManifestFile);
        if (!File.Exists(path))
            throw StitchingException.NotFound($"artifact {r.Display()} does not exist in the store at {Root}; list artifacts to see what is there.", "ref");
        try
        {
            return ArtifactManifest.Parser.ParseJson(File.ReadAllText(path));
        }
        catch (InvalidProtocolBufferException e)
        {
            throw StitchingException.DataCorrupted($"manifest of artifact {r.Display()} is unreadable ({e.Message}).", e);
        }
    }

    public IReadOnlyList<ArtifactManifest> List(string? kind = null)
    {
        var kinds = string.IsNullOrEmpty(kind)
            ? Directory.EnumerateDirectories(Root).Select(Path.GetFileName).Where(ArtifactIds.IsSafe)
            : [ArtifactIds.Validate(kind, "kind")];
        var result = new List<ArtifactManifest>();
        foreach (var k in kinds)
        {
            var dir = Path.Combine(Root, k!);
            if (!Directory.Exists(dir)) continue;
            foreach (var idDir in Directory.EnumerateDirectories(dir).Order())
            {
                var r = new ArtifactRef { Kind = k, Id = Path.GetFileName(idDir) };
                if (ArtifactIds.IsSafe(r.Id) && Exists(r)) result.Add(GetManifest(r));
            }
        }
        return result;
    }

    /// <summary>Starts a new artifact; files are written into a staging folder until Commit.</summary>
    public ArtifactWriter Create(ArtifactRef r)
    {
        ArtifactIds.Validate(r);
        if (Exists(r))
            throw StitchingException.AlreadyExists($"artifact {r.Display()} already exists; artifacts are immutable, so choose another id.", "ref.id");
        var staging = Path.Combine(StagingRoot, $"{r.Kind}.{r.Id}.{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        return new ArtifactWriter(this, r, staging);
    }

    internal ArtifactManifest Commit(ArtifactRef r, string staging, ArtifactManifest manifest)
    {
        manifest.Ref = r.Clone();
        manifest.CreatedAt ??= Timestamp.FromDateTime(DateTime.UtcNow);
        manifest.Files.Clear();
        foreach (var file in Directory.EnumerateFiles(staging).Order())
        {
            var name = Path.GetFileName(file);
            if (name == ManifestFile) continue;
            manifest.Files.Add(new ArtifactFile { Name = name, SizeBytes = new FileInfo(file).Length, Sha256 = Sha256Of(file) });
        }
        AtomicFile.WriteAllBytes(Path.Combine(staging, ManifestFile), System.Text.Encoding.UTF8.GetBytes(Json.Format(manifest)));
        var target = DirectoryOf(r);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        try
        {
            Directory.Move(staging, target);
        }
        catch (IOException) when (Directory.Exists(target))
        {
            Directory.Delete(staging, recursive: true);
            throw StitchingException.AlreadyExists($"artifact {r.Display()} was created by another writer meanwhile; artifacts are immutable, so choose another id.", "ref.id");
        }
        _log?.LogInformation("Stored artifact {Artifact} ({Files} files)", r.Display(), manifest.Files.Count);
        return manifest;
    }

    /// <summary>
    /// Removes an artifact (for short-lived ones such as training checkpoints): its folder is first renamed
    /// into staging, so readers see it whole or not at all. Absent artifacts are ignored.
    /// </summary>
    public void Delete(ArtifactRef r)
    {
        var dir = DirectoryOf(r);
        if (!Directory.Exists(dir)) return;
        var doomed = Path.Combine(StagingRoot, $"deleted.{r.Kind}.{r.Id}.{Guid.NewGuid():N}");
        Directory.Move(dir, doomed);
        Directory.Delete(doomed, recursive: true);
    }

    /// <summary>Opens a file of an artifact for reading after checking its sha256 against the manifest.</summary>
    public FileStream OpenRead(ArtifactRef r, string file)
    {
        var (path, entry) = Locate(r, file);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.RandomAccess);
        try
        {
            Verify(r, path, entry, stream);
            return stream;
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    public byte[] ReadAllBytes(ArtifactRef r, string file)
    {
        using var s = OpenRead(r, file);
        var bytes = new byte[s.Length];
        s.Position = 0;
        s.ReadExactly(bytes);
        return bytes;
    }

    public ArtifactFile FileEntry(ArtifactRef r, string file) => Locate(r, file).Entry;

    private (string Path, ArtifactFile Entry) Locate(ArtifactRef r, string file)
    {
        ArtifactIds.Validate(file, "file");
        var manifest = GetManifest(r);
        var entry = manifest.Files.FirstOrDefault(f => f.Name == file)
            ?? throw StitchingException.NotFound($"artifact {r.Display()} has no file '{file}'; it has: {string.Join(", ", manifest.Files.Select(f => f.Name))}.", "file");
        return (Path.Combine(DirectoryOf(r), file), entry);
    }

    private void Verify(ArtifactRef r, string path, ArtifactFile entry, FileStream stream)
    {
        var info = new FileInfo(path);
        if (_verified.TryGetValue(path, out var seen) && seen.Length == info.Length && seen.Mtime == info.LastWriteTimeUtc) return;
        if (info.Length != entry.SizeBytes)
            throw StitchingException.DataCorrupted($"file '{entry.Name}' of artifact {r.Display()} is corrupted: {info.Length} bytes on disk, {entry.SizeBytes} in the manifest. Recreate the artifact.");
        stream.Position = 0;
        var actual = Convert.ToHexStringLower(SHA256.HashData(stream));
        stream.Position = 0;
        if (actual != entry.Sha256)
            throw StitchingException.DataCorrupted($"file '{entry.Name}' of artifact {r.Display()} is corrupted: sha256 {actual} does not match the manifest's {entry.Sha256}. Recreate the artifact.");
        _verified[path] = (info.Length, info.LastWriteTimeUtc);
    }

    private static string Sha256Of(string path)
    {
        using var s = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(s));
    }
}
