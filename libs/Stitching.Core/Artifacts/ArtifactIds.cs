using System.Text.RegularExpressions;
using Stitching.Core.Errors;
using Stitching.Contracts.Common.V1;

namespace Stitching.Core.Artifacts;

/// <summary>
/// Artifact kinds, ids and file names become path components, so only a safe alphabet is accepted:
/// 1-128 characters from [A-Za-z0-9._-], starting with a letter or digit. That rules out "..",
/// separators, absolute paths and hidden files.
/// </summary>
public static partial class ArtifactIds
{
    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    private static partial Regex Safe();

    public static bool IsSafe(string? value) => value is not null && Safe().IsMatch(value) && !value.Contains("..");

    public static string Validate(string? value, string field)
    {
        if (string.IsNullOrEmpty(value))
            throw StitchingException.InvalidArgument(field, "is empty; give 1-128 characters from A-Z a-z 0-9 . _ -.");
        if (!IsSafe(value))
            throw StitchingException.InvalidArgument(field,
                $"'{Shorten(value)}' is not a safe path component; use 1-128 characters from A-Z a-z 0-9 . _ - starting with a letter or digit, with no '..', '/' or absolute paths.");
        return value;
    }

    public static ArtifactRef Validate(ArtifactRef? r, string field = "ref")
    {
        if (r is null) throw StitchingException.InvalidArgument(field, "is missing; give an artifact kind and id.");
        Validate(r.Kind, field + ".kind");
        Validate(r.Id, field + ".id");
        return r;
    }

    public static string Display(this ArtifactRef r) => $"{r.Kind}/{r.Id}";

    private static string Shorten(string s) => s.Length <= 80 ? s : s[..80] + "...";
}
