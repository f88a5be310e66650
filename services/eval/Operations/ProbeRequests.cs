using Stitching.Contracts.Eval.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Errors;
using Stitching.Core.Stitches;
using Stitching.Core.Tensors;
using Stitching.Core.Forward;
using Stitching.Corpora.Brown;
using Stitching.Core.Text;
using Stitching.Eval.Probes;
using D = Stitching.Eval.Probes.ProbeSettings.Defaults;

namespace Stitching.Eval.Operations;

/// <summary>The edge of EvaluateProbes: checks every field a client sets and maps the request to domain settings.</summary>
public static class ProbeRequests
{
    public const int MaxContext = 4096, MaxBatch = 256, MaxPerClass = 1 << 16;
    public const long MaxTokensPerSplit = 1 << 22;

    /// <summary>Settings with every default filled in; hooks may still be empty (the handler takes the SAEs' hooks).</summary>
    /// <summary>A stitch artifact's tensors, checked to map width <paramref name="widthA"/> to <paramref name="widthB"/>.</summary>
    public static IReadOnlyList<HostTensor> ReadStitch(ArtifactStore store, Stitching.Contracts.Common.V1.ArtifactRef r, int widthA, int widthB)
    {
        store.Require(r, StitchFile.Kind, "stitch", "fit one with StitchService.Fit or import one with ImportStitch.");
        var tensors = StitchFile.Read(store.ReadAllBytes(r, StitchFile.FileName),
            $"{r.Display()}/{StitchFile.FileName}", "stitch");
        var pUp = tensors.First(t => t.Name == StitchFile.PUp);
        if (pUp.Shape.Length != 2 || pUp.Shape[0] != widthA || pUp.Shape[1] != widthB)
            throw StitchingException.FailedPrecondition($"stitch: its P_up is [{string.Join(", ", pUp.Shape)}] but the models' widths are [{widthA}, {widthB}].", "stitch");
        return tensors;
    }

    public static ProbeSettings ToSettings(EvaluateProbesRequest r)
    {
        var a = Model(r.ModelA, "model_a");
        var b = Model(r.ModelB, "model_b");
        var hookA = r.HookA.Length == 0 ? "" : Check.Name(r.HookA, "hook_a", "a hook name");
        var hookB = r.HookB.Length == 0 ? "" : Check.Name(r.HookB, "hook_b", "a hook name");
        if (r.SaeTransferred is not null && r.SaeA is null) throw StitchingException.InvalidArgument("sae_a", "is required with sae_transferred: sparse probes pick their latents on A.");
        if (r.SaeA is not null && r.SaeTransferred is null) throw StitchingException.InvalidArgument("sae_transferred", "is required with sae_a: transfer it with SaeService.Transfer first.");
        if (r.SaeB is not null && r.SaeA is null) throw StitchingException.InvalidArgument("sae_b", "is a baseline of the sparse probes; give sae_a and sae_transferred too.");
        for (var i = 0; i < r.K.Count; i++) Check.InRange(r.K[i], 1, 4096, $"k[{i}]", "latents per sparse probe");
        for (var i = 0; i < r.L2.Count; i++) Check.InRange(r.L2[i], 1e-12, 1e6, $"l2[{i}]", "an L2 strength > 0");
        Check.InRange(r.L2.Count, 0, 32, "l2", "strengths to try");
        Check.InRange(r.K.Count, 0, 32, "k", "latent counts");
        var context = Check.InRange(r.Context, 0, MaxContext, "context", $"tokens per row; 0 = default {D.Context}");
        var budget = Check.InRange(r.MaxTokensPerSplit, 0, MaxTokensPerSplit, "max_tokens_per_split", $"0 = default {D.MaxTokensPerSplit}");
        var perClass = Check.InRange(r.MaxExamplesPerClass, 0, MaxPerClass, "max_examples_per_class", $"0 = default {D.MaxPerClass}");
        var batch = Check.InRange(r.BatchSize, 0, MaxBatch, "batch_size", $"rows per Forward call; 0 = default {D.BatchSize}");
        return new ProbeSettings(a, b, hookA, hookB, r.K.Count > 0 ? r.K.Distinct().Order().ToArray() : D.Ks,
            context == 0 ? D.Context : context, budget == 0 ? D.MaxTokensPerSplit : budget, perClass == 0 ? D.MaxPerClass : perClass,
            r.Seed, r.L2.Count > 0 ? r.L2.Distinct().ToArray() : D.L2, batch == 0 ? D.BatchSize : batch);
    }

    public static LanguageModelRef Model(Contracts.Activations.V1.ModelSpec? m, string field)
    {
        if (m is null || string.IsNullOrEmpty(m.Model)) throw StitchingException.InvalidArgument($"{field}.model", "is required; name a model (see ActivationsService.ListModels).");
        return new LanguageModelRef(m.Model, m.Dtype, m.Device);
    }

    /// <summary>Maps the request's dataset, checking every field a client sets (names the field on error).</summary>
    public static ProbeSet ToProbeSet(ProbeDataset? d)
    {
        if (d is null) throw StitchingException.InvalidArgument("dataset", $"is required: name one of {string.Join(", ", ProbeSet.Named)} or give examples.");
        if (d.Named.Length > 0 && d.Examples.Count > 0) throw StitchingException.InvalidArgument("dataset.named", "give a named set or examples, not both.");
        Check.InRange(d.ClassNames.Count, 0, ProbeSet.MaxClasses, "dataset.class_names", "one name per class id");
        IReadOnlyList<int>? classes = d.Classes.Count > 0 ? d.Classes.ToArray() : null;
        if (d.Named.Length > 0)
        {
            var named = ProbeSet.OfName(d.Named);
            if (d.ClassNames.Count > 0) throw StitchingException.InvalidArgument("dataset.class_names", $"{d.Named} names its own classes ({string.Join(", ", named.ClassNames)}).");
            CheckClasses(classes, named.ClassNames.Count);
            return named with { Classes = classes };
        }
        if (d.Examples.Count == 0) throw StitchingException.InvalidArgument("dataset.examples", "give labelled texts or a named set.");
        Check.InRange(d.Examples.Count, 1, ProbeSet.MaxTexts, "dataset.examples", "labelled texts");
        var tokenLevel = d.Examples[0].Spans.Count > 0;
        var texts = new List<ProbeText>(d.Examples.Count);
        var maxLabel = -1;
        for (var i = 0; i < d.Examples.Count; i++)
        {
            var e = d.Examples[i];
            var field = $"dataset.examples[{i}]";
            if (e.Text.Length == 0 || e.Text.Length > ProbeSet.MaxTextChars) throw StitchingException.InvalidArgument($"{field}.text", $"must hold 1 to {ProbeSet.MaxTextChars} characters.");
            var split = e.Split.Length == 0 ? (i % 5) switch { < 3 => Split.Train, 3 => Split.Validation, _ => Split.Test } : SplitOf(e.Split, $"{field}.split");
            if (tokenLevel)
            {
                if (e.Spans.Count == 0) throw StitchingException.InvalidArgument($"{field}.spans", "every example needs spans when the first has them (token-level set).");
                if (e.Label != -1 && e.Label != 0) throw StitchingException.InvalidArgument($"{field}.label", "a token-level example takes its labels from spans; leave label at -1 or 0.");
                var spans = new List<LabelledSpan>(e.Spans.Count);
                for (var j = 0; j < e.Spans.Count; j++)
                {
                    var s = e.Spans[j];
                    if (s.Start < 0 || s.End <= s.Start || s.End > e.Text.Length)
                        throw StitchingException.InvalidArgument($"{field}.spans[{j}]", $"[{s.Start}, {s.End}) must be a non-empty range inside the text (length {e.Text.Length}).");
                    Check.InRange(s.Label, 0, ProbeSet.MaxClasses - 1, $"{field}.spans[{j}].label", "a class id");
                    spans.Add(new LabelledSpan(s.Start, s.End, s.Label));
                    maxLabel = Math.Max(maxLabel, s.Label);
                }
                if (SpanLabels.Overlap(spans) is var o and >= 0) throw StitchingException.InvalidArgument($"{field}.spans[{o}]", "overlaps another span; spans must not overlap.");
                texts.Add(new ProbeText(e.Text, -1, spans, split));
            }
            else
            {
                if (e.Spans.Count > 0) throw StitchingException.InvalidArgument($"{field}.spans", "the first example has no spans (document-level set); give spans on every example or none.");
                Check.InRange(e.Label, 0, ProbeSet.MaxClasses - 1, $"{field}.label", "a class id");
                maxLabel = Math.Max(maxLabel, e.Label);
                texts.Add(new ProbeText(e.Text, e.Label, [], split));
            }
        }
        var count = Math.Max(maxLabel + 1, d.ClassNames.Count);
        if (count < 2) throw StitchingException.InvalidArgument("dataset.examples", "the labels name one class; a probe needs two or more.");
        var names = Enumerable.Range(0, count).Select(c => c < d.ClassNames.Count ? d.ClassNames[c] : c.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        CheckClasses(classes, count);
        return new ProbeSet("examples", tokenLevel, texts, names, classes);
    }

    private static void CheckClasses(IReadOnlyList<int>? classes, int count)
    {
        if (classes is null) return;
        for (var i = 0; i < classes.Count; i++) Check.InRange(classes[i], 0, count - 1, $"dataset.classes[{i}]", "a class id of the set");
        if (classes.Distinct().Count() != classes.Count) throw StitchingException.InvalidArgument("dataset.classes", "lists a class twice.");
    }

    private static Split SplitOf(string name, string field) => name switch
    {
        "train" => Split.Train,
        "validation" => Split.Validation,
        "test" => Split.Test,
        _ => throw StitchingException.InvalidArgument(field, $"'{Check.Shorten(name)}' is not a split; use train, validation or test."),
    };
}
