using System.Text.Json;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using Stitching.Models.Tokenization;
using TorchSharp;

namespace Stitching.Tests.Fixtures;

/// <summary>
/// A models folder with two small random GPT-NeoX checkpoints of one family ("tiny-a": d=32, 2 layers;
/// "tiny-b": d=48, 3 layers) sharing a byte-level BPE tokenizer trained on this repository's docs (real
/// English text). Made once per test run.
/// </summary>
public static class TinyModels
{
    private static readonly Lazy<string> Folder = new(Create);
    private static readonly TempDir Root = new("tiny-models");

    public const int VocabSize = 320;
    public static string ModelsRoot => Folder.Value;

    /// <summary>
    /// Real text, split into paragraphs: copies of five of the repository's documents as they were on 2026-12-02
    /// (Fixtures/corpus), frozen so that editing the docs cannot change the tests' tokenizer and data.
    /// </summary>
    public static IReadOnlyList<string> Documents() =>
        new[] { "README.txt", "docs-flops.txt", "docs-metrics.txt", "deploy-k8s-README.txt", "build-README.txt" }
            .Select(CorpusFile)
            .SelectMany(f => File.ReadAllText(f).Split("\n\n")).Where(p => p.Trim().Length > 40).ToList();

    /// <summary>A file of the frozen test corpus (Fixtures/corpus).</summary>
    public static string CorpusFile(string name) => Path.Combine(Python.RepoRoot(), "tests", "Stitching.Tests", "Fixtures", "corpus", name);

    private static string Create()
    {
        var dir = Root.Path;
        var trainer = new ByteLevelBpeTrainer(VocabSize);
        trainer.Train(Documents());
        foreach (var (name, d, layers) in new[] { ("tiny-a", 32, 2), ("tiny-b", 48, 3) })
        {
            var model = Path.Combine(dir, name);
            Directory.CreateDirectory(model);
            trainer.Save(Path.Combine(model, "tokenizer.json"));
            WriteNeoX(model, d, layers, seed: d);
        }
        return dir;
    }

    private static void WriteNeoX(string dir, int d, int layers, int seed)
    {
        var config = new Dictionary<string, object>
        {
            ["architectures"] = new[] { "GPTNeoXForCausalLM" }, ["model_type"] = "gpt_neox", ["hidden_size"] = d,
            ["num_hidden_layers"] = layers, ["num_attention_heads"] = 4, ["intermediate_size"] = 4 * d, ["vocab_size"] = VocabSize,
            ["max_position_embeddings"] = 256, ["rotary_pct"] = 0.5, ["rotary_emb_base"] = 10000, ["use_parallel_residual"] = true,
            ["hidden_act"] = "gelu", ["layer_norm_eps"] = 1e-5, ["tie_word_embeddings"] = false, ["bos_token_id"] = 0, ["eos_token_id"] = 0,
        };
        File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(config));
        var gen = new torch.Generator((ulong)seed);
        var tensors = new List<HostTensor>();
        void W(string name, float scale, params long[] shape) =>
            tensors.Add(TorchTensors.ToHost(torch.randn(shape, generator: gen) * scale, name));
        void Ones(string name, long n) => tensors.Add(TorchTensors.ToHost(torch.ones(n), name));
        W("gpt_neox.embed_in.weight", 1f, VocabSize, d);
        for (var l = 0; l < layers; l++)
        {
            var p = $"gpt_neox.layers.{l}.";
            Ones(p + "input_layernorm.weight", d); W(p + "input_layernorm.bias", 0.02f, d);
            Ones(p + "post_attention_layernorm.weight", d); W(p + "post_attention_layernorm.bias", 0.02f, d);
            W(p + "attention.query_key_value.weight", 0.2f, 3 * d, d); W(p + "attention.query_key_value.bias", 0.02f, 3 * d);
            W(p + "attention.dense.weight", 0.2f, d, d); W(p + "attention.dense.bias", 0.02f, d);
            W(p + "mlp.dense_h_to_4h.weight", 0.2f, 4 * d, d); W(p + "mlp.dense_h_to_4h.bias", 0.02f, 4 * d);
            W(p + "mlp.dense_4h_to_h.weight", 0.1f, d, 4 * d); W(p + "mlp.dense_4h_to_h.bias", 0.02f, d);
        }
        Ones("gpt_neox.final_layer_norm.weight", d); W("gpt_neox.final_layer_norm.bias", 0.02f, d);
        W("embed_out.weight", 0.2f, VocabSize, d);
        SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
    }
}
