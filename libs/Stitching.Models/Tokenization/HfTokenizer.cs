using System.Text.Json;
using Stitching.Core.Errors;
using static Stitching.Models.Tokenization.TokenizerJson;

namespace Stitching.Models.Tokenization;

/// <summary>
/// A pure C# reading of Hugging Face tokenizer.json files with a BPE model: byte-level (GPT-2, GPT-NeoX, Llama 3)
/// and SentencePiece-style (Llama 2, TinyLlama, Gemma) pipelines. Encoding follows the Rust library step by step:
/// added tokens, normalizer, pre-tokenizer, BPE, post-processor. Thread-safe after construction.
/// </summary>
public sealed class HfTokenizer
{
    private static readonly string[] BosNames = ["<s>", "<bos>", "<|begin_of_text|>", "<|endoftext|>"];
    private static readonly string[] EosNames = ["</s>", "<eos>", "<|end_of_text|>", "<|endoftext|>"];

    private readonly BpeModel _model;
    private readonly AddedTokens _added;
    private readonly INormalizer? _normalizer;
    private readonly IPreTokenizer? _preTokenizer;
    private readonly IPostProcessor? _postProcessor;
    private readonly IDecoder? _decoder;
    private readonly bool? _addBosToken;

    private HfTokenizer(JsonElement root, TokenizerConfig? config)
    {
        var model = Get(root, "model") ?? throw StitchingException.FailedPrecondition("model is missing; tokenizer.json needs a \"model\" object.", "model");
        _model = BpeModel.Parse(model);
        _added = AddedTokens.Parse(root);
        _normalizer = Normalizers.Parse(Get(root, "normalizer"));
        _preTokenizer = PreTokenizers.Parse(Get(root, "pre_tokenizer"));
        _postProcessor = PostProcessors.Parse(Get(root, "post_processor"));
        _decoder = Decoders.Parse(Get(root, "decoder"));
        _addBosToken = config?.AddBosToken;
        VocabSize = Math.Max(_model.Size, _added.All.Select(t => t.Id + 1).DefaultIfEmpty(0).Max());
        BosId = Resolve(config?.BosToken) ?? _postProcessor?.LeadingSpecialId ?? BosNames.Select(TokenToId).FirstOrDefault(id => id.HasValue);
        EosId = Resolve(config?.EosToken) ?? EosNames.Select(TokenToId).FirstOrDefault(id => id.HasValue);
    }

    /// <summary>Reads a tokenizer.json file (and a tokenizer_config.json beside it, when present, for BOS/EOS).</summary>
    public static HfTokenizer Load(string tokenizerJsonPath)
    {
        if (string.IsNullOrWhiteSpace(tokenizerJsonPath))
            throw StitchingException.InvalidArgument("tokenizerJsonPath", "is empty; pass the path of a tokenizer.json file.");
        if (!File.Exists(tokenizerJsonPath))
            throw StitchingException.NotFound($"tokenizerJsonPath: no file at '{tokenizerJsonPath}'; pass the path of an existing tokenizer.json.", "tokenizerJsonPath");
        return Create(File.ReadAllText(tokenizerJsonPath), TokenizerConfig.ReadNextTo(tokenizerJsonPath));
    }

    /// <summary>Reads tokenizer.json content.</summary>
    public static HfTokenizer FromJson(string json) => Create(json, null);

    private static HfTokenizer Create(string json, TokenizerConfig? config)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            return new HfTokenizer(doc.RootElement, config);
        }
        catch (JsonException e)
        {
            throw StitchingException.InvalidArgument("tokenizerJson", $"is not valid JSON ({e.Message}); pass the content of a tokenizer.json file.");
        }
    }

    /// <summary>One more than the largest id of the model vocab and the added tokens (the embedding rows needed).</summary>
    public int VocabSize { get; }

    /// <summary>The BOS id: tokenizer_config.json's bos_token, else the post-processor's leading special token, else a conventional name.</summary>
    public int? BosId { get; }

    /// <summary>The EOS id: tokenizer_config.json's eos_token, else a conventional name (&lt;/s&gt;, &lt;eos&gt;, &lt;|endoftext|&gt;...).</summary>
    public int? EosId { get; }

    /// <summary>The token string of an id (added tokens first), or null when the id is unknown.</summary>
    public string? IdToToken(int id) => _added.ById(id)?.Content ?? _model.IdToToken(id);

    /// <summary>The id of a token string (added tokens first), or null when it is not in the vocabulary.</summary>
    public int? TokenToId(string token) => _added.ByContent(token)?.Id ?? _model.TokenToId(token);

    private int? Resolve(string? token) => token is null ? null : TokenToId(token);

    /// <summary>Encodes text as Hugging Face's Tokenizer.encode(text, add_special_tokens) does.</summary>
    public Encoding Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var tokens = new List<Token>();
        foreach (var (start, end, added) in _added.Split(text, normalized: false))
        {
            if (added is not null) { tokens.Add(new Token(added.Id, added.Content, start, end, added.Special)); continue; }
            var piece = NormalizedText.FromOriginal(text, start, end);
            if (_normalizer is not null) piece = _normalizer.Normalize(piece);
            EncodeNormalized(piece, tokens);
        }
        if (_postProcessor is not null) tokens = _postProcessor.Process(tokens, addSpecialTokens);
        return ToEncoding(tokens);
    }

    /// <summary>Encodes text and applies a BOS policy; <see cref="BosPolicy.Model"/> follows add_bos_token when the config gives it.</summary>
    public Encoding EncodeWithPolicy(string text, BosPolicy policy)
    {
        if (policy == BosPolicy.Model && _addBosToken is { } add) policy = add ? BosPolicy.Always : BosPolicy.Never;
        var encoding = Encode(text, addSpecialTokens: true);
        if (policy == BosPolicy.Model || BosId is not { } bos) return encoding;
        var templateBos = _postProcessor?.LeadingSpecialId == bos && encoding.Count > 0 && encoding.Ids[0] == bos && encoding.Offsets[0] == (0, 0);
        if (policy == BosPolicy.Never && templateBos) return Skip(encoding, 1);
        if (policy == BosPolicy.Always && !(encoding.Count > 0 && encoding.Ids[0] == bos))
            return new Encoding([bos, .. encoding.Ids], [IdToToken(bos) ?? "", .. encoding.Tokens], [(0, 0), .. encoding.Offsets], [true, .. encoding.SpecialTokensMask]);
        return encoding;
    }

    private static Encoding Skip(Encoding e, int n) =>
        new(e.Ids.Skip(n).ToArray(), e.Tokens.Skip(n).ToArray(), e.Offsets.Skip(n).ToArray(), e.SpecialTokensMask.Skip(n).ToArray());

    private void EncodeNormalized(NormalizedText piece, List<Token> tokens)
    {
        var spans = _added.HasNormalized ? _added.Split(piece.Text, normalized: true) : [(0, piece.Length, null)];
        foreach (var (start, end, added) in spans)
        {
            if (added is not null)
            {
                var (os, oe) = piece.Original(start, end);
                tokens.Add(new Token(added.Id, added.Content, os, oe, added.Special));
                continue;
            }
            var part = start == 0 && end == piece.Length ? piece : piece.Slice(start, end);
            foreach (var word in _preTokenizer?.Split(part) ?? [part])
                foreach (var (id, s, e) in _model.Tokenize(word.Text))
                {
                    var (os, oe) = word.Original(s, e);
                    tokens.Add(new Token(id, _model.IdToToken(id) ?? "", os, oe, false));
                }
        }
    }

    private static Encoding ToEncoding(List<Token> tokens) => new(
        tokens.Select(t => t.Id).ToArray(),
        tokens.Select(t => t.Value).ToArray(),
        tokens.Select(t => (t.Start, t.End)).ToArray(),
        tokens.Select(t => t.Special).ToArray());

    /// <summary>Decodes ids as Hugging Face's Tokenizer.decode does; unknown ids are skipped.</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var tokens = new List<string>();
        foreach (var id in ids)
        {
            var added = _added.ById(id);
            if (skipSpecialTokens && added is { Special: true }) continue;
            if ((added?.Content ?? _model.IdToToken(id)) is { } token) tokens.Add(token);
        }
        return _decoder is null ? string.Join(' ', tokens) : string.Concat(_decoder.Decode(tokens));
    }
}
