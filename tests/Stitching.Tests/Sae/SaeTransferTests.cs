using Stitching.Core.Stitches;
using Stitching.Sae.Weights;
using Stitching.Sae.Transfer;
using static TorchSharp.torch;

namespace Stitching.Tests.Sae;

/// <summary>Transfer through a stitch against the composition T_up . SAE . T_down evaluated directly (paper section 4).</summary>
[Trait("Category", "Unit")]
public class SaeTransferTests
{
    [Theory]
    [InlineData("topk", false)]
    [InlineData("topk", true)]
    [InlineData("jumprelu", false)]
    [InlineData("jumprelu", true)]
    [InlineData("standard", true)]
    public void Transfer_matches_the_composition_on_random_inputs(string architecture, bool applyBDec)
    {
        using var scope = NewDisposeScope();
        var sae = SaeFixtures.RandomSae(architecture, d: 12, m: 40, k: 5, applyBDec, seed: 1);
        var stitch = SaeFixtures.RandomStitch(12, 20, seed: 2);
        using var transferred = SaeTransfer.Apply(sae, stitch);
        var xB = randn(64, 20, generator: new Generator(3));

        var direct = stitch.Up(sae.Forward(stitch.Down(xB)));
        var viaTransfer = transferred.Forward(xB);

        Assert.Equal([64L, 20L], viaTransfer.shape);
        Assert.True(SaeFixtures.MaxAbsDiff(direct, viaTransfer) < 1e-5, $"max |diff| {SaeFixtures.MaxAbsDiff(direct, viaTransfer)}");
        // Same latents, not just the same output: k and thresholds carried over unchanged.
        Assert.True(SaeFixtures.MaxAbsDiff(sae.Encode(stitch.Down(xB)), transferred.Encode(xB)) < 1e-5);
        Assert.True(transferred.Encode(xB).ne(0).sum().item<long>() > 0, "a test where nothing fires proves nothing");
        Assert.Equal(applyBDec, transferred.Config.ApplyBDecToInput);
        Assert.Equal(20, transferred.Config.DIn);
    }

    [Theory]
    [InlineData("topk", true)]
    [InlineData("topk", false)]
    [InlineData("jumprelu", true)]
    public void Transfer_of_a_normalised_sae_matches_the_composition(string architecture, bool applyBDec)
    {
        using var scope = NewDisposeScope();
        using var raw = SaeFixtures.RandomSae(architecture, d: 12, m: 40, k: 5, applyBDec, seed: 4);
        // An SAE with input scaling: SAE(x) = (f(s x) W_dec + b_dec) / s, written out here by hand.
        const double s = 0.37;
        using var sae = new SaeParameters(raw.Config with { NormalizeActivations = SaeConfig.ExpectedAverageOnlyIn, ScalingFactor = s },
            raw.WEnc, raw.BEnc, raw.WDec, raw.BDec, raw.Threshold);
        var stitch = SaeFixtures.RandomStitch(12, 20, seed: 5);
        var xB = randn(64, 20, generator: new Generator(6)) * 3;
        var xA = stitch.Down(xB);
        var byHand = ((raw.Architecture.Encode(raw.PreActivation(xA * s), raw)).matmul(raw.WDec) + raw.BDec) / s;
        Assert.True(SaeFixtures.MaxAbsDiff(byHand, sae.Forward(xA)) < 1e-5);

        using var transferred = SaeTransfer.Apply(sae, stitch);
        var direct = stitch.Up(byHand);
        Assert.True(SaeFixtures.MaxAbsDiff(direct, transferred.Forward(xB)) < 1e-5, $"max |diff| {SaeFixtures.MaxAbsDiff(direct, transferred.Forward(xB))}");
        Assert.True(transferred.Encode(xB).ne(0).sum().item<long>() > 0, "a test where nothing fires proves nothing");
        Assert.Equal(1.0, transferred.Config.ScalingFactor);

        // Re-expressing under another factor (what a warm start does) keeps the function and the latents.
        using var rescaled = transferred.WithScalingFactor(2.5);
        Assert.True(SaeFixtures.MaxAbsDiff(transferred.Forward(xB), rescaled.Forward(xB)) < 1e-4);
        Assert.True(SaeFixtures.MaxAbsDiff(transferred.Encode(xB), rescaled.Encode(xB)) < 1e-4);
    }

    [Theory]
    [InlineData("topk", true)]
    [InlineData("jumprelu", false)]
    public void Transfer_of_identity_stitch_returns_same_sae(string architecture, bool applyBDec)
    {
        using var scope = NewDisposeScope();
        var sae = SaeFixtures.RandomSae(architecture, 10, 30, 4, applyBDec, seed: 5);
        var identity = new AffineStitch(eye(10), zeros(10), eye(10), zeros(10));
        using var same = SaeTransfer.Apply(sae, identity);
        foreach (var ((name, a), (_, b)) in sae.Named().Zip(same.Named()))
            Assert.True(SaeFixtures.MaxAbsDiff(a, b) < 1e-6, $"{name} changed by an identity stitch");
        Assert.Equal(sae.Config, same.Config);
    }

    [Theory]
    [InlineData("jumprelu")]
    [InlineData("standard")]
    public void Renormalising_decoder_rows_keeps_the_function_and_gives_unit_rows(string architecture)
    {
        using var scope = NewDisposeScope();
        var sae = SaeFixtures.RandomSae(architecture, 12, 40, 0, applyBDec: true, seed: 7);
        using var transferred = SaeTransfer.Apply(sae, SaeFixtures.RandomStitch(12, 16, 8));
        using var unit = SaeTransfer.RenormalizeDecoder(transferred);
        var x = randn(50, 16, generator: new Generator(9));
        Assert.True(SaeFixtures.MaxAbsDiff(transferred.Forward(x), unit.Forward(x)) < 1e-4);
        Assert.True(SaeFixtures.MaxAbsDiff(unit.WDec.norm(1), ones(40)) < 1e-5);
        Assert.True(SaeFixtures.MaxAbsDiff(transferred.WDec.norm(1), ones(40)) > 0.1, "the fixture's rows must start far from unit norm");
    }

    [Fact]
    public void Transfer_rejects_a_stitch_from_another_width()
    {
        var sae = SaeFixtures.RandomSae("topk", 12, 20, 3, false, 1);
        var e = Assert.Throws<Stitching.Core.Errors.StitchingException>(() => SaeTransfer.Apply(sae, SaeFixtures.RandomStitch(8, 16, 2)));
        Assert.Contains("width 12", e.Message);
    }
}
