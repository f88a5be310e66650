using Stitching.Core.Errors;
using Stitching.Core.Metrics;
using Stitching.Models;
using Stitching.Models.Families;
using Stitching.Models.Runtime;
using Stitching.Tests.Fixtures;
using TorchSharp;
using static TorchSharp.torch;

namespace Stitching.Tests.Models;

/// <summary>Splicing, start-at-layer, stop-early and the intervention kinds, on reference checkpoints.</summary>
[Trait("Category", "Integration")]
public class InterventionTests
{
    private static (CausalLm Model, Tensor Ids) Load(string family)
    {
        var dir = HfReference.Checkpoint(family);
        using var refs = HfReference.Reference(dir);
        return (ModelFamilies.Load(dir), HfReference.Tensor(refs, "ids"));
    }

    [Theory]
    [InlineData("gpt2", 1)]
    [InlineData("gpt_neox", 2)]
    [InlineData("gemma2", 1)]
    public void Replacing_resid_pre_by_the_clean_stream_reproduces_the_clean_loss_exactly(string family, int layer)
    {
        var (model, ids) = Load(family);
        using var _ = model;
        using var scope = NewDisposeScope();
        var hook = new HookPoint(HookSite.ResidPre, layer);
        var clean = model.Forward(new ForwardRequest { Ids = ids, Capture = [hook], Logits = true });
        var spliced = model.Forward(new ForwardRequest
        {
            Ids = ids, Logits = true,
            Interventions = new Dictionary<HookPoint, IReadOnlyList<IIntervention>> { [hook] = [new ReplaceIntervention(clean.Captured[hook].clone())] },
        });
        var cleanLoss = LanguageModelMetrics.NextTokenLoss(clean.Logits!, ids);
        var splicedLoss = LanguageModelMetrics.NextTokenLoss(spliced.Logits!, ids);
        Assert.True(cleanLoss.allclose(splicedLoss, 0, 0), "spliced per-token loss differs from the clean one");
        // and replacing with something else does change it (the intervention is really applied)
        var noisy = model.Forward(new ForwardRequest
        {
            Ids = ids, Logits = true,
            Interventions = new Dictionary<HookPoint, IReadOnlyList<IIntervention>> { [hook] = [new ReplaceIntervention(clean.Captured[hook] + 0.5)] },
        });
        Assert.False(cleanLoss.allclose(LanguageModelMetrics.NextTokenLoss(noisy.Logits!, ids), 0, 0));
    }

    [Theory]
    [InlineData("llama", 1)]
    [InlineData("gpt_neox_seq", 2)]
    public void Starting_at_a_layer_from_a_captured_stream_matches_the_full_forward(string family, int layer)
    {
        var (model, ids) = Load(family);
        using var _ = model;
        using var scope = NewDisposeScope();
        var hook = new HookPoint(HookSite.ResidPre, layer);
        var full = model.Forward(new ForwardRequest { Ids = ids, Capture = [hook], Logits = true });
        var resumed = model.Forward(new ForwardRequest { StartLayer = layer, StartResidual = full.Captured[hook], Logits = true });
        Assert.True(full.Logits!.allclose(resumed.Logits!, 0, 0), $"start-at-layer logits differ by {(full.Logits! - resumed.Logits!).abs().max().item<float>()}");
    }

    [Fact]
    public void Add_and_clamp_do_what_their_formulas_say()
    {
        var (model, ids) = Load("gpt2");
        using var _ = model;
        using var scope = NewDisposeScope();
        var pre = new HookPoint(HookSite.ResidPre, 1);
        var clean = model.Forward(new ForwardRequest { Ids = ids, Capture = [pre], Logits = true });
        var v = randn(model.Width, generator: new Generator(5));

        var added = model.Forward(new ForwardRequest
        {
            Ids = ids, Capture = [pre], Logits = true,
            Interventions = new Dictionary<HookPoint, IReadOnlyList<IIntervention>> { [pre] = [new AddIntervention(v, scale: 2)] },
        });
        var viaStart = model.Forward(new ForwardRequest { StartLayer = 1, StartResidual = clean.Captured[pre] + 2 * v, Logits = true });
        Assert.True((added.Logits! - viaStart.Logits!).abs().max().item<float>() < 1e-5);

        var clamped = model.Forward(new ForwardRequest
        {
            Ids = ids, Capture = [pre],
            Interventions = new Dictionary<HookPoint, IReadOnlyList<IIntervention>> { [pre] = [new ClampIntervention(v * 3, 4.0, positions: [2, 5])] },
        });
        var h = clamped.Captured[pre];
        var proj = matmul(h, v / v.norm());
        Assert.True((proj[.., 2] - 4).abs().max().item<float>() < 1e-4);
        Assert.True((proj[.., 5] - 4).abs().max().item<float>() < 1e-4);
        // positions not listed are untouched; the orthogonal part is preserved
        Assert.True(h[.., 3].allclose(clean.Captured[pre][.., 3], 0, 0));
        var vh = v / v.norm();
        var orthClean = clean.Captured[pre] - matmul(clean.Captured[pre], vh).unsqueeze(-1) * vh;
        var orthNew = h - proj.unsqueeze(-1) * vh;
        Assert.True((orthClean - orthNew).abs().max().item<float>() < 1e-4);
    }

    [Fact]
    public void An_affine_round_trip_through_an_invertible_map_is_the_identity()
    {
        var (model, ids) = Load("llama");
        using var _ = model;
        using var scope = NewDisposeScope();
        var hook = new HookPoint(HookSite.ResidPre, 2);
        var gen = new Generator(9);
        var up = randn(model.Width, 48, generator: gen, dtype: ScalarType.Float64);
        var down = linalg.pinv(up);
        var b = randn(48, generator: gen, dtype: ScalarType.Float64);
        var clean = model.Forward(new ForwardRequest { Ids = ids, Logits = true });
        var roundTrip = model.Forward(new ForwardRequest
        {
            Ids = ids, Logits = true,
            Interventions = new Dictionary<HookPoint, IReadOnlyList<IIntervention>>
            {
                [hook] = [new AffineIntervention([(up.to(ScalarType.Float32), b.to(ScalarType.Float32)), (down.to(ScalarType.Float32), (-matmul(b, down)).to(ScalarType.Float32))])],
            },
        });
        var kl = LanguageModelMetrics.KlFromClean(clean.Logits!, roundTrip.Logits!);
        Assert.True(kl.abs().max().item<float>() < 1e-5, $"KL {kl.max().item<float>()}");
        var ablated = model.Forward(new ForwardRequest
        {
            Ids = ids, Logits = true,
            Interventions = new Dictionary<HookPoint, IReadOnlyList<IIntervention>> { [hook] = [new AblateIntervention()] },
        });
        Assert.True(LanguageModelMetrics.KlFromClean(clean.Logits!, ablated.Logits!).mean().item<float>() > 1e-3);
    }

    [Fact]
    public void Extraction_stops_after_the_last_needed_layer_and_rejects_bad_hooks()
    {
        var (model, ids) = Load("gpt_neox");
        using var _ = model;
        using var scope = NewDisposeScope();
        var hook = model.ParseHook("blocks.1.hook_resid_pre");
        var laterLayersRun = 0;
        var probe = new Dictionary<HookPoint, IReadOnlyList<IIntervention>>
        {
            [new HookPoint(HookSite.ResidPre, 2)] = [new FunctionIntervention(x => { laterLayersRun++; return x; })],
        };
        var result = model.Forward(new ForwardRequest { Ids = ids, Capture = [hook], Interventions = probe });
        Assert.Null(result.Logits);
        Assert.Single(result.Captured);
        Assert.Equal(0, laterLayersRun);
        model.Forward(new ForwardRequest { Ids = ids, Capture = [hook], Interventions = probe, Logits = true });
        Assert.Equal(1, laterLayersRun);
        var e = Assert.Throws<StitchingException>(() => model.ParseHook("blocks.0.hook_resid_mid"));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("parallel residual", e.Message);
        Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<StitchingException>(() => model.ParseHook("blocks.9.hook_resid_pre")).Kind);
        var bad = Assert.Throws<StitchingException>(() => model.Forward(new ForwardRequest { Ids = ids + 1000 }));
        Assert.Contains("token_ids", bad.Message);
    }
}
