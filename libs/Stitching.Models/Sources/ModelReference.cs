using System.Text.RegularExpressions;
using Stitching.Core.Errors;

namespace Stitching.Models.Sources;

/// <summary>
/// What a user named as a model: an existing checkpoint folder, or a Hugging Face repo id
/// <c>ORG/NAME</c> with an optional <c>@REVISION</c> (branch, tag or commit hash; default <c>main</c>).
/// </summary>
public abstract partial record ModelReference
{
    public const string DefaultRevision = "main";
    private const string Field = "model";
    private const int MaxRepoIdLength = 96;

    /// <summary>Parses <paramref name="reference"/>; throws InvalidArgument (field "model") when it is neither form.</summary>
    public static ModelReference Parse(string reference)
    {
        if (string.IsNullOrWhiteSpace(reference))
            throw StitchingException.InvalidArgument(Field, "is empty; pass a checkpoint folder or a Hugging Face repo id such as openai-community/gpt2.");
        var text = reference.Trim();
        if (Directory.Exists(text)) return new LocalModelReference(Path.GetFullPath(text));
        if (LooksLikePath(text))
            throw StitchingException.NotFound($"model: no directory '{text}'; pass an existing checkpoint folder or a Hugging Face repo id ORG/NAME.", Field);

        var at = text.IndexOf('@');
        var repoId = at < 0 ? text : text[..at];
        var revision = at < 0 ? DefaultRevision : text[(at + 1)..];
        if (repoId.Length > MaxRepoIdLength || !RepoIdPattern().IsMatch(repoId) || repoId.Contains("--") || repoId.Contains(".."))
            throw StitchingException.InvalidArgument(Field,
                $"'{text}' is not a Hugging Face repo id; write ORG/NAME[@REVISION] (letters, digits, '-', '_', '.'; no '--' or '..', at most {MaxRepoIdLength} characters), e.g. openai-community/gpt2@main, or pass an existing checkpoint folder.");
        if (!RevisionPattern().IsMatch(revision) || revision.Contains(".."))
            throw StitchingException.InvalidArgument(Field,
                $"revision '{revision}' in '{text}' is not a branch, tag or commit hash; write ORG/NAME@REVISION, e.g. @main or a 40-hex commit.");
        return new HubModelReference(repoId, revision);
    }

    private static bool LooksLikePath(string text) =>
        Path.IsPathRooted(text) || text.StartsWith('.') || text.StartsWith('~') || text.Contains('\\')
        || text.Split('@')[0].Count(c => c == '/') > 1;

    [GeneratedRegex("^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?/[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")]
    private static partial Regex RepoIdPattern();

    [GeneratedRegex("^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*$")]
    private static partial Regex RevisionPattern();
}

/// <summary>A checkpoint folder on local disk, used as it is.</summary>
public sealed record LocalModelReference(string Directory) : ModelReference
{
    public override string ToString() => Directory;
}

/// <summary>A Hugging Face model repository at a revision (branch, tag or commit hash).</summary>
public sealed record HubModelReference(string RepoId, string Revision) : ModelReference
{
    public override string ToString() => Revision == DefaultRevision ? RepoId : $"{RepoId}@{Revision}";
}
