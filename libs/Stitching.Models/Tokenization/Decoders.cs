using System.Text.Json;
using System.Text.RegularExpressions;
using static Stitching.Models.Tokenization.TokenizerJson;

namespace Stitching.Models.Tokenization;

/// <summary>A tokenizer.json decoder: one step of the chain turning token strings back into text.</summary>
internal interface IDecoder
{
    List<string> Decode(List<string> tokens);
}

/// <summary>Builds decoders from tokenizer.json (Sequence, ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip).</summary>
internal static class Decoders
{
    public static IDecoder? Parse(JsonElement? e, string field = "decoder")
    {
        if (e is not { } d || IsNull(d)) return null;
        var type = Type(d, field);
        return type switch
        {
            "Sequence" => new SequenceDecoder(Array(d, "decoders").Select((c, i) => Parse(c, $"{field}.decoders[{i}]")!).ToArray()),
            "ByteLevel" => new ByteLevelDecoder(),
            "Metaspace" => Metaspace.Parse(d, field),
            "Replace" => new ReplaceDecoder(Pattern(d, field), RequiredString(d, "content", field)),
            "ByteFallback" => new ByteFallbackDecoder(),
            "Fuse" => new FuseDecoder(),
            "Strip" => new StripDecoder(RequiredString(d, "content", field), Int(d, "start", 0), Int(d, "stop", 0)),
            _ => throw Unsupported(field, type, "Sequence, ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip"),
        };
    }

    private sealed class SequenceDecoder(IDecoder[] steps) : IDecoder
    {
        public List<string> Decode(List<string> tokens) => steps.Aggregate(tokens, (t, s) => s.Decode(t));
    }

    /// <summary>Maps alphabet characters back to bytes; a token with other characters passes as its UTF-8.</summary>
    private sealed class ByteLevelDecoder : IDecoder
    {
        public List<string> Decode(List<string> tokens)
        {
            var bytes = new List<byte>();
            foreach (var t in tokens)
            {
                if (t.All(c => ByteLevelAlphabet.ToByte(c).HasValue)) bytes.AddRange(t.Select(c => ByteLevelAlphabet.ToByte(c)!.Value));
                else bytes.AddRange(System.Text.Encoding.UTF8.GetBytes(t));
            }
            return [System.Text.Encoding.UTF8.GetString(bytes.ToArray())];
        }
    }

    private sealed class ReplaceDecoder(Regex pattern, string content) : IDecoder
    {
        public List<string> Decode(List<string> tokens) => tokens.Select(t => pattern.Replace(t, content.Replace("$", "$$"))).ToList();
    }

    /// <summary>Joins runs of &lt;0xNN&gt; tokens into text; invalid UTF-8 gives one U+FFFD per byte.</summary>
    private sealed class ByteFallbackDecoder : IDecoder
    {
        public List<string> Decode(List<string> tokens)
        {
            var result = new List<string>(tokens.Count);
            var pending = new List<byte>();
            foreach (var t in tokens)
            {
                if (ByteToken(t) is { } b) { pending.Add(b); continue; }
                Flush();
                result.Add(t);
            }
            Flush();
            return result;

            void Flush()
            {
                if (pending.Count == 0) return;
                try { result.Add(new System.Text.UTF8Encoding(false, true).GetString(pending.ToArray())); }
                catch (System.Text.DecoderFallbackException) { result.AddRange(Enumerable.Repeat("\uFFFD", pending.Count)); }
                pending.Clear();
            }
        }

        private static byte? ByteToken(string t) =>
            t.Length == 6 && t.StartsWith("<0x", StringComparison.Ordinal) && t[5] == '>' &&
            byte.TryParse(t.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out var b) ? b : null;
    }

    private sealed class FuseDecoder : IDecoder
    {
        public List<string> Decode(List<string> tokens) => [string.Concat(tokens)];
    }

    /// <summary>Removes up to start leading and stop trailing copies of a character from each token.</summary>
    private sealed class StripDecoder(string content, int start, int stop) : IDecoder
    {
        public List<string> Decode(List<string> tokens) => tokens.Select(Strip).ToList();

        private string Strip(string t)
        {
            if (content.Length != 1) return t;
            var c = content[0];
            var from = 0;
            while (from < Math.Min(start, t.Length) && t[from] == c) from++;
            var to = t.Length;
            while (t.Length - to < stop && to > from && t[to - 1] == c) to--;
            return t[from..to];
        }
    }
}
