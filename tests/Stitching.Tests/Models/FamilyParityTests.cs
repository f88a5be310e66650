using Stitching.Core.Metrics;
using Stitching.Models;
using Stitching.Models.Families;
using Stitching.Models.Runtime;
using Stitching.Tests.Fixtures;
using TorchSharp;

namespace Stitching.Tests.Models;

/// <summary>
/// Every supported family against an independent float64 numpy implementation of Hugging Face's forward
/// on random checkpoints written in Hugging Face layout: every hook the reference records, logits and
/// per-token loss, in float32 (1e-4 relative to the largest value) and bfloat16 (bf16 tolerance).
/// </summary>
[Trait("Category", "Integration")]
public class FamilyParityTests
{
    public static TheoryData<string, string?> Families => new()
    {
        { "gpt2", null }, { "gpt2", "transformer." }, { "gpt_neox", null }, { "gpt_neox_seq", null },
        { "llama", null }, { "llama_tied", null }, { "qwen2", null }, { "gemma2", null },
    };

    [Theory]
    [MemberData(nameof(Families))]
    public void Float32_hooks_logits_and_loss_match_the_float64_reference(string family, string? prefix)
    {
        var dir = HfReference.Checkpoint(family, "float32", prefix);
        using var refs = HfReference.Reference(dir);
        using var model = ModelFamilies.Load(dir);
        using var scope = torch.NewDisposeScope();
        var ids = HfReference.Tensor(refs, "ids");
        var hooks = refs.Entries.Select(e => e.Name).Where(n => n.StartsWith("blocks.") || n.StartsWith("ln_final.")).ToList();
        Assert.Contains(hooks, h => h.EndsWith("hook_resid_pre"));
        Assert.Equal(model.Layers, hooks.Count(h => h.EndsWith("hook_resid_pre")));
        var result = model.Forward(new ForwardRequest { Ids = ids, Capture = hooks.Select(h => model.ParseHook(h)).ToList(), Logits = true });
        foreach (var h in hooks)
        {
            var err = HfReference.RelativeError(HfReference.Tensor(refs, h), result.Captured[model.ParseHook(h)]);
            Assert.True(err < 1e-4, $"{family} {h}: max error relative to max |value| is {err:E2}, over 1e-4");
        }
        var logitsErr = HfReference.RelativeError(HfReference.Tensor(refs, "logits"), result.Logits!);
        Assert.True(logitsErr < 1e-4, $"{family} logits: relative error {logitsErr:E2}, over 1e-4");
        var lossErr = HfReference.RelativeError(HfReference.Tensor(refs, "loss_per_token"), LanguageModelMetrics.NextTokenLoss(result.Logits!, ids));
        Assert.True(lossErr < 1e-4, $"{family} loss: relative error {lossErr:E2}, over 1e-4");
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("gpt_neox")]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("gemma2")]
    public void Bfloat16_run_agrees_within_bf16_tolerance(string family)
    {
        // The reference runs the bf16-rounded weights in float64, so only activation rounding differs.
        var dir = HfReference.Checkpoint(family, "bfloat16");
        using var refs = HfReference.Reference(dir);
        using var model = ModelFamilies.Load(dir, torch.ScalarType.BFloat16);
        using var scope = torch.NewDisposeScope();
        Assert.Equal(torch.ScalarType.BFloat16, model.DType);
        var ids = HfReference.Tensor(refs, "ids");
        var hooks = Enumerable.Range(0, model.Layers).Select(l => new HookPoint(HookSite.ResidPre, l)).ToList();
        var result = model.Forward(new ForwardRequest { Ids = ids, Capture = hooks, Logits = true });
        Assert.Equal(torch.ScalarType.BFloat16, result.Logits!.dtype);
        foreach (var h in hooks)
        {
            var err = HfReference.RelativeError(HfReference.Tensor(refs, h.ToString()), result.Captured[h]);
            Assert.True(err < 2e-2, $"{family} bf16 {h}: relative error {err:E2}, over 2e-2");
        }
        var logitsErr = HfReference.RelativeError(HfReference.Tensor(refs, "logits"), result.Logits);
        Assert.True(logitsErr < 3e-2, $"{family} bf16 logits: relative error {logitsErr:E2}, over 3e-2");
        // and bf16 is genuinely lower precision than float32 here (the test would catch a silent upcast)
        using var f32 = ModelFamilies.Load(dir);
        var exact = f32.Forward(new ForwardRequest { Ids = ids, Logits = true });
        Assert.True(HfReference.RelativeError(HfReference.Tensor(refs, "logits"), exact.Logits!) < logitsErr);
    }
}
