using Stitching.Corpora.Brown;
using Stitching.Zoo.Training;

namespace Stitching.Tests.Zoo;

/// <summary>Brown tag parsing, the universal POS map, rendering and the LR schedule: pure functions.</summary>
[Trait("Category", "Unit")]
public class BrownTagTests
{
    [Theory]
    [InlineData("np-tl", "np", false, false, "NOUN")]
    [InlineData("nn-hl", "nn", false, false, "NOUN")]
    [InlineData("pps+bez", "pps", false, false, "PRON")]
    [InlineData("bez*", "bez", false, true, "VERB")]
    [InlineData("fw-nn", "nn", true, false, "X")]
    [InlineData("jj-tl-hl", "jj", false, false, "ADJ")]
    [InlineData("``", "``", false, false, ".")]
    [InlineData("*", "*", false, false, "ADV")]
    [InlineData("in", "in", false, false, "ADP")]
    [InlineData("to", "to", false, false, "PRT")]
    public void Tag_parses_to_base_and_universal_class(string raw, string expectedBase, bool foreign, bool negated, string upos)
    {
        var tag = BrownTag.Parse(raw);
        Assert.Equal(expectedBase, tag.Base);
        Assert.Equal(foreign, tag.Foreign);
        Assert.Equal(negated, tag.Negated);
        Assert.Equal(upos, UniversalPos.Of(tag));
    }

    [Fact]
    public void Compound_tag_keeps_every_part()
    {
        Assert.Equal(["pps", "bez"], BrownTag.Parse("pps+bez").Parts);
        Assert.Equal(["ppss", "md"], BrownTag.Parse("ppss+md-tl").Parts);
    }

    [Fact]
    public void Rendering_glues_punctuation_and_quotes_and_keeps_word_spans()
    {
        var doc = BrownCorpus.Parse("ca99", ["\t``/`` Only/rb a/at handful/nn ''/'' ,/, the/at jury/nn said/vbd ./.", "It/pps ran/vbd ./."]);
        var text = doc.Render();
        Assert.Equal("\"Only a handful\", the jury said. It ran.", text.Text);
        foreach (var w in text.Words) Assert.Equal(DocumentText.Surface(w.Source.Text), text.Text[w.Start..w.End]);
        Assert.Equal('a', doc.Genre);
    }

    [Fact]
    public void Learning_rate_warms_up_linearly_then_decays_by_cosine_to_the_floor()
    {
        var spec = new TrainingSpec(Seed: 1, Batch: 1, Tokens: 100, PeakLr: 1.0, WarmupSteps: 10, MinLrFraction: 0.1);
        Assert.Equal(0.1, spec.LearningRate(0, 110), 12);
        Assert.Equal(1.0, spec.LearningRate(9, 110), 12);
        Assert.Equal(1.0, spec.LearningRate(10, 110), 12);
        Assert.Equal(0.1 + 0.9 * 0.5, spec.LearningRate(60, 110), 12);   // halfway through the decay: cos(pi/2) = 0
        Assert.Equal(0.1, spec.LearningRate(110, 110), 12);
    }
}
