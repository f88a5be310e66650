using System.Text.Json;

namespace Stitching.Zoo.Training;

/// <summary>
/// One GPT-NeoX (Pythia-architecture) shape: width, depth and heads; MLP 4x width, rotary over a quarter
/// of each head (rotary_pct 0.25), parallel residual, untied embed_out, GELU, as Pythia's configs.
/// </summary>
public sealed record NeoXSize(string Name, int Width, int Layers, int Heads)
{
    public const double RotaryPct = 0.25;
    public int HeadDim => Width / Heads;

    /// <summary>Parameters of the shape for a vocabulary: embed_in, embed_out, and per block 12 d^2 + 13 d (+ final norm 2 d).</summary>
    public long Parameters(int vocab) => 2L * vocab * Width + Layers * (12L * Width * Width + 13L * Width) + 2L * Width;

    /// <summary>config.json with the keys transformers' GPTNeoXConfig reads.</summary>
    public string ConfigJson(int vocab, int context) => JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["architectures"] = new[] { "GPTNeoXForCausalLM" },
        ["model_type"] = "gpt_neox",
        ["vocab_size"] = vocab,
        ["hidden_size"] = Width,
        ["num_hidden_layers"] = Layers,
        ["num_attention_heads"] = Heads,
        ["intermediate_size"] = 4 * Width,
        ["hidden_act"] = "gelu",
        ["rotary_pct"] = RotaryPct,
        ["rotary_emb_base"] = 10000,
        ["max_position_embeddings"] = context,
        ["initializer_range"] = 0.02,
        ["layer_norm_eps"] = 1e-5,
        ["use_parallel_residual"] = true,
        ["attention_bias"] = true,
        ["attention_dropout"] = 0.0,
        ["hidden_dropout"] = 0.0,
        ["classifier_dropout"] = 0.1,
        ["tie_word_embeddings"] = false,
        ["use_cache"] = true,
        ["bos_token_id"] = 0,
        ["eos_token_id"] = 0,
        ["torch_dtype"] = "float32",
    }, new JsonSerializerOptions { WriteIndented = true });
}
