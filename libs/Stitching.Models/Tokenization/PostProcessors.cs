using System.Text.Json;
using Stitching.Core.Errors;
using static Stitching.Models.Tokenization.TokenizerJson;

namespace Stitching.Models.Tokenization;

/// <summary>A tokenizer.json post-processor for single sequences: adds special tokens around the model's tokens.</summary>
internal interface IPostProcessor
{
    List<Token> Process(List<Token> tokens, bool addSpecialTokens);

    /// <summary>The id of the special token this processor puts first, if any (the model's BOS by convention).</summary>
    int? LeadingSpecialId => null;
}

/// <summary>Builds post-processors from tokenizer.json (Sequence, ByteLevel, TemplateProcessing, RobertaProcessing, BertProcessing).</summary>
internal static class PostProcessors
{
    public static IPostProcessor? Parse(JsonElement? e, string field = "post_processor")
    {
        if (e is not { } p || IsNull(p)) return null;
        var type = Type(p, field);
        return type switch
        {
            "Sequence" => new SequenceProcessor(Array(p, "processors").Select((c, i) => Parse(c, $"{field}.processors[{i}]")!).ToArray()),
            // ByteLevel only trims offsets; offsets here keep the covered characters as they are.
            "ByteLevel" => new SequenceProcessor([]),
            "TemplateProcessing" => Template.Parse(p, field),
            "RobertaProcessing" or "BertProcessing" => new Template([Pair(p, "cls", field), null, Pair(p, "sep", field)]),
            _ => throw Unsupported(field, type, "Sequence, ByteLevel, TemplateProcessing, RobertaProcessing, BertProcessing"),
        };
    }

    private static (int Id, string Token)? Pair(JsonElement p, string name, string field)
    {
        var a = Array(p, name).ToArray();
        if (a.Length != 2 || a[0].ValueKind != JsonValueKind.String || a[1].ValueKind != JsonValueKind.Number)
            throw StitchingException.FailedPrecondition($"{field}.{name} must be [token, id]; fix the tokenizer.json.", $"{field}.{name}");
        return (a[1].GetInt32(), a[0].GetString()!);
    }

    private sealed class SequenceProcessor(IPostProcessor[] steps) : IPostProcessor
    {
        public List<Token> Process(List<Token> tokens, bool addSpecialTokens) => steps.Aggregate(tokens, (t, s) => s.Process(t, addSpecialTokens));
        public int? LeadingSpecialId => steps.Select(s => s.LeadingSpecialId).FirstOrDefault(id => id.HasValue);
    }

    /// <summary>A single-sequence template: special tokens (non-null) and the sequence slot (null), in order.</summary>
    private sealed class Template((int Id, string Token)?[] items) : IPostProcessor
    {
        public static Template Parse(JsonElement p, string field)
        {
            var specials = Get(p, "special_tokens") is { ValueKind: JsonValueKind.Object } s ? s : default;
            var items = new List<(int, string)?>();
            foreach (var item in Array(p, "single"))
            {
                if (Get(item, "Sequence") is not null) { items.Add(null); continue; }
                var name = Get(item, "SpecialToken") is { } st ? RequiredString(st, "id", $"{field}.single") :
                    throw StitchingException.FailedPrecondition($"{field}.single items must be SpecialToken or Sequence; fix the tokenizer.json.", $"{field}.single");
                var spec = Get(specials, name) ?? throw StitchingException.FailedPrecondition(
                    $"{field}.special_tokens lacks '{name}' used by {field}.single; add it with its ids.", $"{field}.special_tokens");
                var ids = Array(spec, "ids").Select(i => i.GetInt32()).ToArray();
                var tokens = Array(spec, "tokens").Select(t => t.GetString() ?? "").ToArray();
                for (var i = 0; i < ids.Length; i++) items.Add((ids[i], i < tokens.Length ? tokens[i] : name));
            }
            return new Template(items.ToArray());
        }

        public int? LeadingSpecialId => items.Length > 0 && items[0] is { } first ? first.Id : null;

        public List<Token> Process(List<Token> tokens, bool addSpecialTokens)
        {
            if (!addSpecialTokens) return tokens;
            var result = new List<Token>(tokens.Count + items.Length);
            foreach (var item in items)
            {
                if (item is { } s) result.Add(new Token(s.Id, s.Token, 0, 0, true));
                else result.AddRange(tokens);
            }
            return result;
        }
    }
}
