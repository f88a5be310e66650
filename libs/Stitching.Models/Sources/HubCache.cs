using System.Text;
using System.Text.RegularExpressions;
using Stitching.Core.Artifacts;
using Stitching.Core.Errors;

namespace Stitching.Models.Sources;

/// <summary>
/// The Hugging Face hub cache exactly as Python's huggingface_hub lays it out, so either side can fill it:
/// <code>
/// {root}/models--{org}--{name}/refs/{revision}              the commit hash a branch or tag points at
///                             /blobs/{etag}                 file contents (sha256 for LFS files, git sha1 otherwise)
///                             /blobs/{etag}.incomplete      a download in progress
///                             /snapshots/{commit}/{file}    relative symlink to ../../blobs/{etag}
///                             /.no_exist/{commit}/{file}    empty marker: the file is absent at that commit
/// </code>
/// </summary>
public sealed partial class HubCache(string root)
{
    public const string IncompleteSuffix = ".incomplete";

    public string Root { get; } = Path.GetFullPath(root);

    /// <summary>The repo's folder: <c>models--{org}--{name}</c>.</summary>
    public string RepoFolder(string repoId) => Path.Combine(Root, "models--" + repoId.Replace("/", "--", StringComparison.Ordinal));

    public string BlobPath(string repoId, string etag) => Path.Combine(RepoFolder(repoId), "blobs", etag);

    public string SnapshotFolder(string repoId, string commit) => Path.Combine(RepoFolder(repoId), "snapshots", commit);

    public string RefPath(string repoId, string revision) => Path.Combine(RepoFolder(repoId), "refs", revision);

    /// <summary>True for a full 40-hex git commit hash, which huggingface_hub uses as a revision without a ref file.</summary>
    public static bool IsCommitHash(string revision) => CommitPattern().IsMatch(revision);

    /// <summary>The commit a revision names in the cache: itself when it is a commit hash, else the content of refs/{revision}.</summary>
    public string? ResolveCommit(string repoId, string revision)
    {
        if (IsCommitHash(revision)) return revision;
        var path = RefPath(repoId, revision);
        return File.Exists(path) && File.ReadAllText(path).Trim() is { } commit && IsCommitHash(commit) ? commit : null;
    }

    /// <summary>The cached snapshot folder for a revision, or null when the cache has none.</summary>
    public string? FindSnapshot(string repoId, string revision) =>
        ResolveCommit(repoId, revision) is { } commit && Directory.Exists(SnapshotFolder(repoId, commit))
            ? SnapshotFolder(repoId, commit)
            : null;

    /// <summary>Records that <paramref name="revision"/> points at <paramref name="commit"/> (nothing for a commit hash, like huggingface_hub).</summary>
    public void WriteRef(string repoId, string revision, string commit)
    {
        if (revision == commit) return;
        var path = RefPath(repoId, revision);
        if (File.Exists(path) && File.ReadAllText(path) == commit) return;
        AtomicFile.WriteAllBytes(path, Encoding.UTF8.GetBytes(commit));
    }

    /// <summary>Points snapshots/{commit}/{file} at blobs/{etag} with a relative symlink, replacing any old link.</summary>
    public string LinkSnapshotFile(string repoId, string commit, string file, string etag)
    {
        var pointer = SnapshotPath(repoId, commit, file);
        Directory.CreateDirectory(Path.GetDirectoryName(pointer)!);
        if (File.Exists(pointer) || new FileInfo(pointer).LinkTarget is not null) File.Delete(pointer);
        File.CreateSymbolicLink(pointer, Path.GetRelativePath(Path.GetDirectoryName(pointer)!, BlobPath(repoId, etag)));
        return pointer;
    }

    /// <summary>Writes the empty .no_exist/{commit}/{file} marker huggingface_hub uses for files a commit lacks.</summary>
    public void MarkMissing(string repoId, string commit, string file)
    {
        var marker = Path.Combine(RepoFolder(repoId), ".no_exist", commit, CheckRelative(file));
        Directory.CreateDirectory(Path.GetDirectoryName(marker)!);
        File.WriteAllBytes(marker, []);
    }

    /// <summary>True when <paramref name="path"/> is a file, or a symlink whose target is a file.</summary>
    public static bool FileResolves(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is null) return info.Exists;
        return info.ResolveLinkTarget(returnFinalTarget: true) is { Exists: true } target && target is FileInfo;
    }

    private string SnapshotPath(string repoId, string commit, string file) => Path.Combine(SnapshotFolder(repoId, commit), CheckRelative(file));

    /// <summary>Refuses file names that would land outside the snapshot (absolute, or with '..' segments).</summary>
    internal static string CheckRelative(string file)
    {
        if (file.Length == 0 || Path.IsPathRooted(file) || file.Replace('\\', '/').Split('/').Any(s => s is "" or "." or ".."))
            throw StitchingException.FailedPrecondition($"file name '{file}' would leave the snapshot folder; a repo file name must be a relative path without '.' or '..' segments.", "model");
        return file;
    }

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitPattern();
}
