using System.Text.Json;
using Stitching.Contracts.Activations.V1;
using Stitching.Core.Errors;

namespace Stitching.Activations.Extraction;

/// <summary>A named built-in corpus ("brown:train"...). Implementations are registered in DI.</summary>
public interface INamedCorpus
{
    /// <summary>Names this provider serves, e.g. "brown:train".</summary>
    IReadOnlyList<string> Names { get; }

    /// <summary>Documents in a fixed order.</summary>
    IEnumerable<string> Documents(string name);

    /// <summary>A string that changes whenever the documents would (folded into artifact ids).</summary>
    string Version(string name);
}

/// <summary>Reads the documents a CorpusSpec names, in a deterministic order, one at a time.</summary>
public sealed class Corpus(IEnumerable<INamedCorpus> named, PathPolicy paths)
{
    public IEnumerable<string> Documents(CorpusSpec spec)
    {
        var docs = spec.SourceCase switch
        {
            CorpusSpec.SourceOneofCase.Texts => spec.Texts.Texts.AsEnumerable(),
            CorpusSpec.SourceOneofCase.TextFiles => Files(spec.TextFiles.Paths, "corpus.text_files.paths").Select(File.ReadAllText),
            CorpusSpec.SourceOneofCase.Jsonl => Files(spec.Jsonl.Paths, "corpus.jsonl.paths").SelectMany(p => Jsonl(p, string.IsNullOrEmpty(spec.Jsonl.TextField) ? "text" : spec.Jsonl.TextField)),
            CorpusSpec.SourceOneofCase.Named => Provider(spec.Named).Documents(spec.Named),
            _ => throw StitchingException.InvalidArgument("corpus", "set one source: texts, text_files, jsonl or named."),
        };
        return spec.MaxDocuments > 0 ? docs.Take((int)Math.Min(spec.MaxDocuments, int.MaxValue)) : docs;
    }

    /// <summary>Identity of the corpus contents for artifact ids: the spec plus file sizes and times, or the named corpus version.</summary>
    public string Version(CorpusSpec spec) => spec.SourceCase switch
    {
        CorpusSpec.SourceOneofCase.TextFiles => string.Join(";", Files(spec.TextFiles.Paths, "corpus.text_files.paths").Select(Stamp)),
        CorpusSpec.SourceOneofCase.Jsonl => string.Join(";", Files(spec.Jsonl.Paths, "corpus.jsonl.paths").Select(Stamp)),
        CorpusSpec.SourceOneofCase.Named => Provider(spec.Named).Version(spec.Named),
        _ => "",
    };

    private static string Stamp(string path) { var f = new FileInfo(path); return $"{f.FullName}:{f.Length}:{f.LastWriteTimeUtc.Ticks}"; }

    private INamedCorpus Provider(string name) =>
        named.FirstOrDefault(n => n.Names.Contains(name))
        ?? throw StitchingException.NotFound($"corpus.named: no built-in corpus '{name}'; known: {string.Join(", ", named.SelectMany(n => n.Names).DefaultIfEmpty("none"))}.", "corpus.named");

    /// <summary>Client-named files, each through the path policy (allowed roots, regular files, size cap).</summary>
    private IReadOnlyList<string> Files(IEnumerable<string> given, string field)
    {
        var list = given.ToList();
        if (list.Count == 0) throw StitchingException.InvalidArgument(field, "name at least one file.");
        return list.Select((p, i) => paths.ResolveReadableFile(p, $"{field}[{i}]")).ToList();
    }

    private static IEnumerable<string> Jsonl(string path, string field)
    {
        var line = 0;
        foreach (var text in File.ReadLines(path))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            JsonElement doc;
            try { doc = JsonDocument.Parse(text).RootElement; }
            catch (JsonException e) { throw StitchingException.InvalidArgument("corpus.jsonl", $"{path}:{line} is not JSON ({e.Message})."); }
            if (!doc.TryGetProperty(field, out var value) || value.ValueKind != JsonValueKind.String)
                throw StitchingException.InvalidArgument("corpus.jsonl.text_field", $"{path}:{line} has no string field '{field}'.");
            yield return value.GetString()!;
        }
    }
}
