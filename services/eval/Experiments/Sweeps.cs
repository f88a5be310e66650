using System.Globalization;
using System.Text.Json.Nodes;
using Stitching.Contracts.Eval.V1;
using Stitching.Core.Errors;

namespace Stitching.Eval.Experiments;

/// <summary>One experiment of a sweep: its index (the Kubernetes completion index), name and spec.</summary>
public sealed record SweepPoint(int Index, string Name, ExperimentSpec Spec);

/// <summary>A sweep: named points over one base spec, and how many run at once.</summary>
public sealed record Sweep(string Name, int Parallelism, IReadOnlyList<SweepPoint> Points);

/// <summary>
/// Sweep files (docs/experiments.md "Sweeps"): `experiment:` holds the base spec and `sweep:` either `axes` (a
/// cartesian product over dotted spec paths, the first axis varying slowest) or `points` (an explicit list of
/// {name, set: {path: value}}). A file without `sweep:` is a sweep of one point. Points are named from their axis
/// values ("sae.k=8,sae.width_multiples=4"), the names are part of neither the spec nor its hash, so points that
/// come out equal share every stage.
/// </summary>
public static class Sweeps
{
    public const int MaxPoints = 10000;

    public static Sweep Parse(string text, string defaultName)
    {
        var root = ExperimentSpecs.YamlToJson(text, "SPEC") as JsonObject ?? throw StitchingException.InvalidArgument("SPEC", "must be a mapping: an experiment spec, or experiment: + sweep:.");
        if (root["sweep"] is not JsonObject sweep)
        {
            var single = ExperimentSpecs.Parse(text);
            var name0 = single.Name.Length > 0 ? single.Name : defaultName;
            single.Name = name0;
            return new Sweep(name0, 1, [new SweepPoint(0, name0, single)]);
        }
        var baseSpec = root["experiment"] as JsonObject ?? throw StitchingException.InvalidArgument("experiment", "is required beside sweep: the base spec every point edits.");
        var name = sweep["name"]?.GetValue<string>() ?? defaultName;
        var parallelism = sweep["parallelism"] is { } p ? (int)p.GetValue<long>() : 1;
        if (parallelism is < 1 or > 256) throw StitchingException.InvalidArgument("sweep.parallelism", $"{parallelism} must be 1 to 256.");
        foreach (var key in sweep.Select(kv => kv.Key))
            if (key is not ("name" or "parallelism" or "axes" or "points"))
                throw StitchingException.InvalidArgument($"sweep.{key}", "is not a sweep field; use name, parallelism, axes or points.");
        var edits = new List<(string Name, List<(string Path, JsonNode? Value)> Set)>();
        if (sweep["axes"] is JsonObject axes)
        {
            if (sweep["points"] is not null) throw StitchingException.InvalidArgument("sweep.points", "give axes or points, not both.");
            edits.Add(("", []));
            foreach (var (path, values) in axes)
            {
                if (values is not JsonArray list || list.Count == 0) throw StitchingException.InvalidArgument($"sweep.axes.{path}", "must be a non-empty list of values.");
                edits = edits.SelectMany(e => list.Select(v => (e.Name.Length == 0 ? $"{path}={Label(v)}" : $"{e.Name},{path}={Label(v)}", e.Set.Append((path, v)).ToList()))).ToList();
                if (edits.Count > MaxPoints) throw StitchingException.InvalidArgument("sweep.axes", $"the product has more than {MaxPoints} points; split the sweep.");
            }
        }
        else if (sweep["points"] is JsonArray points)
        {
            for (var i = 0; i < points.Count; i++)
            {
                var point = points[i] as JsonObject ?? throw StitchingException.InvalidArgument($"sweep.points[{i}]", "must be a mapping {name, set}.");
                var set = point["set"] as JsonObject ?? new JsonObject();
                edits.Add((point["name"]?.GetValue<string>() ?? $"point-{i}", set.Select(kv => (kv.Key, kv.Value)).ToList()));
            }
        }
        else throw StitchingException.InvalidArgument("sweep", "needs axes (a product over spec paths) or points (an explicit list).");
        if (edits.Count == 0) throw StitchingException.InvalidArgument("sweep", "has no points.");
        if (edits.Select(e => e.Name).Distinct().Count() != edits.Count) throw StitchingException.InvalidArgument("sweep.points", "point names must be distinct.");
        var result = new List<SweepPoint>();
        for (var i = 0; i < edits.Count; i++)
        {
            var json = (JsonObject)baseSpec.DeepClone();
            foreach (var (path, value) in edits[i].Set) Set(json, path, value?.DeepClone(), edits[i].Name);
            var spec = ExperimentSpecs.FromJson(json, $"sweep point {edits[i].Name}");
            spec.Name = $"{name}/{edits[i].Name}";
            ExperimentSpecs.Normalize(spec); // every point valid before any runs
            result.Add(new SweepPoint(i, edits[i].Name, spec));
        }
        return new Sweep(name, parallelism, result);
    }

    private static string Label(JsonNode? v) => v switch
    {
        JsonArray a => string.Join("+", a.Select(Label)),
        JsonObject o => string.Join("+", o.Select(kv => $"{kv.Key}:{Label(kv.Value)}")),
        JsonValue value when value.TryGetValue<double>(out var d) => d.ToString(CultureInfo.InvariantCulture),
        null => "null",
        _ => v.ToString(),
    };

    /// <summary>Sets a dotted path ("sae.k", "model_b.model") in a spec's JSON, creating mappings on the way.</summary>
    private static void Set(JsonObject json, string path, JsonNode? value, string point)
    {
        var parts = path.Split('.');
        var node = json;
        for (var i = 0; i < parts.Length - 1; i++)
        {
            if (node[parts[i]] is not JsonObject next)
            {
                if (node[parts[i]] is not null) throw StitchingException.InvalidArgument($"sweep {point}", $"{path}: {string.Join('.', parts[..(i + 1)])} is not a mapping.");
                node[parts[i]] = next = new JsonObject();
            }
            node = next;
        }
        node[parts[^1]] = value;
    }
}
