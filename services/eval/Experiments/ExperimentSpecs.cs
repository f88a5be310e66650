using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Google.Protobuf;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Eval.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Errors;
using YamlDotNet.RepresentationModel;

namespace Stitching.Eval.Experiments;

/// <summary>
/// Experiment specs: their YAML/JSON form (the protobuf JSON mapping of <see cref="ExperimentSpec"/>, snake_case or
/// camelCase keys), their defaults (docs/experiments.md; the measured configuration of docs/science.md), validation
/// with the offending field named, and their hash (the normalised spec without its name), which names the report.
/// </summary>
public static partial class ExperimentSpecs
{
    public const int DefaultContext = 128, DefaultTestRows = 128, DefaultSpliceRows = 64, DefaultExtractBatch = 16;
    public const long DefaultTrainTokens = 262144, DefaultAdamSteps = 2000;
    public const int DefaultK = 16, DefaultSaeBatch = 1024, DefaultEpochs = 4, DefaultLogEvery = 5;
    public const double DefaultLr = 1e-3;
    public const ulong DefaultSeed = 1;
    public static readonly string[] Evaluations = ["splice", "sae_eval", "probes", "steering", "features"];
    public static readonly string[] Rules = ["heldout_fvu", "heldout_svcca", "svcca"];
    public static readonly string[] Architectures = ["topk", "batchtopk", "relu", "jumprelu"];

    private static readonly JsonParser Parser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(false));
    private static readonly JsonFormatter Canonical = new(JsonFormatter.Settings.Default.WithFormatDefaultValues(false));

    /// <summary>A spec from YAML or JSON text (JSON is YAML too); unknown keys are an error naming them.</summary>
    public static ExperimentSpec Parse(string text, string what = "spec")
    {
        var node = YamlToJson(text, what);
        if (node is not JsonObject obj) throw StitchingException.InvalidArgument(what, "must be a mapping of ExperimentSpec fields (docs/experiments.md).");
        if (obj["experiment"] is JsonObject inner) obj = inner; // a sweep file's base spec
        return FromJson(obj, what);
    }

    public static ExperimentSpec FromJson(JsonObject obj, string what = "spec")
    {
        try { return Parser.Parse<ExperimentSpec>(obj.ToJsonString()); }
        catch (InvalidProtocolBufferException e) { throw StitchingException.InvalidArgument(what, $"is not a valid experiment spec: {e.Message} (fields: docs/experiments.md)."); }
        catch (InvalidJsonException e) { throw StitchingException.InvalidArgument(what, $"is not a valid experiment spec: {e.Message}."); }
    }

    /// <summary>The spec as JSON (snake_case keys, defaults omitted), the form a sweep edits.</summary>
    public static JsonObject ToJson(ExperimentSpec spec) =>
        (JsonObject)JsonNode.Parse(new JsonFormatter(JsonFormatter.Settings.Default.WithPreserveProtoFieldNames(true)).Format(spec))!;

    /// <summary>YAML (1.2 core schema scalars: plain true/false, numbers and null are typed; quoted ones are strings) as JSON.</summary>
    public static JsonNode? YamlToJson(string text, string what)
    {
        var stream = new YamlStream();
        try { stream.Load(new StringReader(text)); }
        catch (YamlDotNet.Core.YamlException e) { throw StitchingException.InvalidArgument(what, $"is not valid YAML or JSON: {e.Message}"); }
        if (stream.Documents.Count == 0) throw StitchingException.InvalidArgument(what, "is empty.");
        return Convert(stream.Documents[0].RootNode);
    }

    private static JsonNode? Convert(YamlNode node) => node switch
    {
        YamlMappingNode m => new JsonObject(m.Children.Select(kv => KeyValuePair.Create(((YamlScalarNode)kv.Key).Value ?? "", Convert(kv.Value)))),
        YamlSequenceNode s => new JsonArray(s.Children.Select(Convert).ToArray()),
        YamlScalarNode { Style: YamlDotNet.Core.ScalarStyle.Plain } p => Scalar(p.Value ?? ""),
        YamlScalarNode q => JsonValue.Create(q.Value ?? ""),
        _ => null,
    };

    private static JsonNode? Scalar(string v)
    {
        if (v is "" or "~" or "null" or "Null" or "NULL") return null;
        if (v is "true" or "True" or "TRUE") return JsonValue.Create(true);
        if (v is "false" or "False" or "FALSE") return JsonValue.Create(false);
        if (IntPattern().IsMatch(v) && long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l)) return JsonValue.Create(l);
        if (FloatPattern().IsMatch(v) && double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)) return JsonValue.Create(d);
        return JsonValue.Create(v);
    }

    [GeneratedRegex(@"^[-+]?[0-9]+$")] private static partial Regex IntPattern();
    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")] private static partial Regex FloatPattern();

    /// <summary>A copy with every default filled in, after validation (INVALID_ARGUMENT naming the field otherwise).</summary>
    public static ExperimentSpec Normalize(ExperimentSpec input)
    {
        var s = input.Clone();
        if (s.ModelA is null || string.IsNullOrWhiteSpace(s.ModelA.Model)) throw StitchingException.InvalidArgument("spec.model_a.model", "is required: the small model A (a store name, folder or Hugging Face id).");
        if (s.ModelB is null || string.IsNullOrWhiteSpace(s.ModelB.Model)) throw StitchingException.InvalidArgument("spec.model_b.model", "is required: the large model B.");
        s.TrainCorpus ??= new CorpusSpec { Named = "brown:train" };
        s.TestCorpus ??= new CorpusSpec { Named = "brown:test" };
        if (s.TrainCorpus.SourceCase == CorpusSpec.SourceOneofCase.None) throw StitchingException.InvalidArgument("spec.train_corpus", "names no source; give named, text_files, jsonl or texts.");
        if (s.TestCorpus.SourceCase == CorpusSpec.SourceOneofCase.None) throw StitchingException.InvalidArgument("spec.test_corpus", "names no source; give named, text_files, jsonl or texts.");
        s.Context = Or(Check.InRange(s.Context, 0, 8192, "spec.context", "tokens per row; 0 = default 128"), DefaultContext);
        if (s.Context < 8) throw StitchingException.InvalidArgument("spec.context", $"{s.Context} is too short; use at least 8 tokens per row.");
        s.TrainTokens = Check.InRange(s.TrainTokens, 0, 1L << 36, "spec.train_tokens", "0 = default 262144") is > 0 and var t ? t : DefaultTrainTokens;
        if (s.TrainTokens < 8L * s.Context) throw StitchingException.InvalidArgument("spec.train_tokens", $"{s.TrainTokens} is under 8 rows of {s.Context}; give more training tokens.");
        s.TestRows = Or(Check.InRange(s.TestRows, 0, 1 << 16, "spec.test_rows", "0 = default 128"), DefaultTestRows);
        s.SpliceRows = Or(Check.InRange(s.SpliceRows, 0, s.TestRows, "spec.splice_rows", $"at most test_rows ({s.TestRows}); 0 = default {DefaultSpliceRows}"), Math.Min(DefaultSpliceRows, s.TestRows));
        s.ExtractBatchSize = Or(Check.InRange(s.ExtractBatchSize, 0, 1024, "spec.extract_batch_size", "0 = default 16"), DefaultExtractBatch);
        s.Layers ??= new LayerSelection();
        if (string.IsNullOrEmpty(s.Layers.Rule)) s.Layers.Rule = Rules[0];
        if (!Rules.Contains(s.Layers.Rule)) throw StitchingException.InvalidArgument("spec.layers.rule", $"'{Check.Shorten(s.Layers.Rule)}' is not a rule; use one of {string.Join(", ", Rules)}.");
        if (s.Layers.LayerA is not null) Check.InRange(s.Layers.LayerA!.Value, 0, 1024, "spec.layers.layer_a");
        if (s.Layers.LayerB is not null) Check.InRange(s.Layers.LayerB!.Value, 0, 1024, "spec.layers.layer_b");
        s.Stitch ??= new StitchSettings();
        if (s.Stitch.AdamSteps == 0) s.Stitch.AdamSteps = DefaultAdamSteps;
        Check.InRange(s.Stitch.AdamSteps, -1, 1L << 24, "spec.stitch.adam_steps", "0 = default 2000, -1 skips the Adam stitch");
        if (s.Stitch.AdamSteps < 0) s.Stitch.AdamSteps = -1;
        s.Sae ??= new SaeSettings();
        var sae = s.Sae;
        if (string.IsNullOrEmpty(sae.Architecture)) sae.Architecture = "topk";
        if (!Architectures.Contains(sae.Architecture)) throw StitchingException.InvalidArgument("spec.sae.architecture", $"'{Check.Shorten(sae.Architecture)}' is not an architecture; use one of {string.Join(", ", Architectures)}.");
        if (sae.Widths.Count > 0 && sae.WidthMultiples.Count > 0) throw StitchingException.InvalidArgument("spec.sae.widths", "give widths or width_multiples, not both.");
        if (sae.Widths.Count == 0 && sae.WidthMultiples.Count == 0) sae.WidthMultiples.AddRange([4, 8]);
        for (var i = 0; i < sae.Widths.Count; i++) Check.InRange(sae.Widths[i], 1, 1 << 22, $"spec.sae.widths[{i}]");
        for (var i = 0; i < sae.WidthMultiples.Count; i++) Check.InRange(sae.WidthMultiples[i], 1, 1024, $"spec.sae.width_multiples[{i}]");
        sae.K = Or(Check.InRange(sae.K, 0, 1 << 16, "spec.sae.k", "0 = default 16"), DefaultK);
        sae.Lr = sae.Lr == 0 ? DefaultLr : Check.InRange(sae.Lr, 1e-8, 1, "spec.sae.lr");
        sae.BatchSize = Or(Check.InRange(sae.BatchSize, 0, 1 << 16, "spec.sae.batch_size", "0 = default 1024"), DefaultSaeBatch);
        sae.Epochs = Or(Check.InRange(sae.Epochs, 0, 1000, "spec.sae.epochs", "0 = default 4"), DefaultEpochs);
        if (sae.Seed == 0) sae.Seed = DefaultSeed;
        sae.LogEvery = Or(Check.InRange(sae.LogEvery, 0, 1 << 20, "spec.sae.log_every", "0 = default 5"), DefaultLogEvery);
        if (s.Evaluations.Count == 0) s.Evaluations.AddRange(Evaluations);
        for (var i = 0; i < s.Evaluations.Count; i++)
            if (!Evaluations.Contains(s.Evaluations[i]))
                throw StitchingException.InvalidArgument($"spec.evaluations[{i}]", $"'{Check.Shorten(s.Evaluations[i])}' is not an evaluation; use any of {string.Join(", ", Evaluations)}.");
        var ordered = Evaluations.Where(s.Evaluations.Contains).ToList(); // the order stages run in; duplicates dropped
        s.Evaluations.Clear();
        s.Evaluations.AddRange(ordered);
        if (s.Probes.Count == 0)
        {
            s.Probes.Add(new EvaluateProbesRequest { Dataset = new ProbeDataset { Named = "brown:pos" } });
            s.Probes.Add(new EvaluateProbesRequest { Dataset = new ProbeDataset { Named = "brown:genre" }, MaxTokensPerSplit = 131072 });
        }
        for (var i = 0; i < s.Probes.Count; i++)
        {
            var p = s.Probes[i];
            if (p.ModelA is not null || p.ModelB is not null || p.Stitch is not null || p.SaeA is not null || p.SaeTransferred is not null || p.SaeB is not null)
                throw StitchingException.InvalidArgument($"spec.probes[{i}]", "models, stitch and SAEs are the experiment's own; leave them out of the template.");
            if (p.Dataset is null) throw StitchingException.InvalidArgument($"spec.probes[{i}].dataset", "is required (e.g. named: brown:pos).");
        }
        s.Steering ??= new EvaluateSteeringRequest();
        if (s.Steering.ModelA is not null || s.Steering.ModelB is not null || s.Steering.Stitch is not null || s.Steering.HookA != "" || s.Steering.HookB != "")
            throw StitchingException.InvalidArgument("spec.steering", "models, hooks and stitch are the experiment's own; leave them out of the template.");
        s.Features ??= new EvaluateFeaturesRequest();
        if (s.Features.ModelA is not null || s.Features.ModelB is not null || s.Features.Stitch is not null || s.Features.SaeA is not null || s.Features.SaeTransferred is not null)
            throw StitchingException.InvalidArgument("spec.features", "models, stitch and SAEs are the experiment's own; leave them out of the template.");
        return s;
    }

    /// <summary>SHA-256 (hex) of the normalised spec without its name: equal for specs that run the same stages.</summary>
    public static string Hash(ExperimentSpec normalized)
    {
        var unnamed = normalized.Clone();
        unnamed.Name = "";
        return ContentIds.Sha256Hex(Canonical.Format(unnamed));
    }

    /// <summary>The report artifact an experiment of this hash writes.</summary>
    public static Contracts.Common.V1.ArtifactRef ReportRef(string hash) => new() { Kind = ReportKind, Id = "rep-" + hash[..20] };

    public const string ReportKind = "report";

    /// <summary>The main job's spec on the Brown family (`stitch paper`, `stitch reproduce --builtin brown`).</summary>
    public static ExperimentSpec Brown(string family, string small, string large, int context, long tokens) => new()
    {
        Name = $"paper-{family}",
        ModelA = new ModelSpec { Model = small }, ModelB = new ModelSpec { Model = large },
        TrainCorpus = new CorpusSpec { Named = "brown:train" }, TestCorpus = new CorpusSpec { Named = "brown:test" },
        Context = context, TrainTokens = tokens,
    };

    private static int Or(int v, int fallback) => v == 0 ? fallback : v;
}
