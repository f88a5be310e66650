using Microsoft.Extensions.Options;
using Stitching.Core.Errors;
using Stitching.Hosting;
using Stitching.Models.Sources;

namespace Stitching.Activations.ModelHosting;

/// <summary>A model the host can find: its name, checkpoint folder and where it was found.</summary>
public sealed record CatalogEntry(string Name, string Path, string Source);

/// <summary>
/// Finds checkpoints: the model store ({StoreRoot}/models/NAME, or Stitching:ModelsRoot), the Hugging Face
/// hub cache (models a user downloaded with Python), local folders, and hub repo ids (downloaded on request).
/// </summary>
public sealed class ModelCatalog(IOptions<StitchingOptions> options, PathPolicy paths)
{
    private readonly HubOptions _hub = HubOptions.FromEnvironment();

    public string ModelsRoot => options.Value.ModelsRootOrDefault();

    public IReadOnlyList<CatalogEntry> List()
    {
        var found = new List<CatalogEntry>();
        if (Directory.Exists(ModelsRoot))
            foreach (var dir in Directory.EnumerateDirectories(ModelsRoot).Order(StringComparer.Ordinal))
                if (File.Exists(System.IO.Path.Combine(dir, "config.json")))
                    found.Add(new CatalogEntry(System.IO.Path.GetFileName(dir), dir, "store"));
        var cache = new HubCache(_hub.CacheRoot);
        if (Directory.Exists(cache.Root))
            foreach (var repoDir in Directory.EnumerateDirectories(cache.Root, "models--*").Order(StringComparer.Ordinal))
            {
                var repo = System.IO.Path.GetFileName(repoDir)["models--".Length..].Replace("--", "/");
                if (cache.FindSnapshot(repo, ModelReference.DefaultRevision) is { } snapshot && CheckpointFiles.IsComplete(snapshot))
                    found.Add(new CatalogEntry(repo, snapshot, "hub-cache"));
            }
        return found;
    }

    /// <summary>The checkpoint folder for a model reference; downloads from the hub when allowed.</summary>
    public async Task<CatalogEntry> ResolveAsync(string reference, bool allowDownload, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(reference))
            throw StitchingException.InvalidArgument("model", "is empty; give a model-store name, a checkpoint folder or a Hugging Face repo id (see ListModels).");
        // A path (absolute, ./ or ../, ~) is a client-named folder: the path policy decides before anything is looked up.
        if (reference.StartsWith('/') || reference.StartsWith("./") || reference.StartsWith("../") || reference.StartsWith('~') || reference == "." || reference == "..")
        {
            var folder = paths.Resolve(reference, "model");
            if (!File.Exists(System.IO.Path.Combine(folder, "config.json")))
                throw StitchingException.NotFound($"model: folder '{Check.Shorten(reference)}' holds no config.json; give a Hugging Face checkpoint folder.", "model");
            return new CatalogEntry(reference, folder, "folder");
        }
        if (!reference.Contains('/'))
        {
            if (!Stitching.Core.Artifacts.ArtifactIds.IsSafe(reference))
                throw StitchingException.InvalidArgument("model", $"'{Check.Shorten(reference)}' is not a model-store name (letters, digits, . _ -), a folder path or a hub id org/name.");
            var stored = System.IO.Path.Combine(ModelsRoot, reference);
            if (File.Exists(System.IO.Path.Combine(stored, "config.json"))) return new CatalogEntry(reference, stored, "store");
        }
        else if (!System.Text.RegularExpressions.Regex.IsMatch(reference, @"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}(@[A-Za-z0-9._/-]{1,128})?$") || reference.Contains(".."))
            throw StitchingException.InvalidArgument("model", $"'{Check.Shorten(reference)}' is not a hub id (org/name[@revision]); a folder path starts with / or ./.");
        if (!reference.Contains('/'))
            throw StitchingException.NotFound($"model '{reference}' is not in the model store ({ModelsRoot}) and is not a folder; known: {string.Join(", ", List().Select(e => e.Name).DefaultIfEmpty("none"))}. Give a store name, a checkpoint folder or a Hugging Face repo id (org/name).", "model");
        var path = await new ModelResolver(_hub).ResolveAsync(reference, allowDownload, ct: ct);
        return new CatalogEntry(reference, path, "hub-cache");
    }
}
