using Stitching.Contracts.Eval.V1;
using Stitching.Core.Errors;
using Stitching.Eval.Experiments;

namespace Stitching.Tests.Experiments;

/// <summary>Spec parsing (YAML and JSON), defaults, validation naming the field, and the hash that names stages and reports.</summary>
public class ExperimentSpecTests
{
    private const string Yaml = """
        name: tiny
        model_a: {model: tiny-a}
        modelB: {model: tiny-b}      # camelCase works too
        context: 32
        train_tokens: 4096
        layers: {rule: heldout_svcca, layer_a: 1}
        sae:
          widths: [64, 96]
          k: 4
          lr: 3e-3
        evaluations: [sae_eval, splice]
        """;

    [Fact]
    public void Yaml_and_json_parse_to_the_same_spec_with_typed_scalars()
    {
        var y = ExperimentSpecs.Parse(Yaml);
        Assert.Equal("tiny-b", y.ModelB.Model);
        Assert.Equal(32, y.Context);
        Assert.Equal(4096, y.TrainTokens);
        Assert.True(y.Layers.LayerA is not null);
        Assert.Equal(1, y.Layers.LayerA);
        Assert.False(y.Layers.LayerB is not null);
        Assert.Equal([64, 96], y.Sae.Widths);
        Assert.Equal(3e-3, y.Sae.Lr);
        var j = ExperimentSpecs.Parse(ExperimentSpecs.ToJson(y).ToJsonString());
        Assert.Equal(y, j);
    }

    [Fact]
    public void Normalize_fills_the_documented_defaults_and_orders_evaluations()
    {
        var s = ExperimentSpecs.Normalize(ExperimentSpecs.Parse(Yaml));
        Assert.Equal("brown:train", s.TrainCorpus.Named);
        Assert.Equal("brown:test", s.TestCorpus.Named);
        Assert.Equal(ExperimentSpecs.DefaultTestRows, s.TestRows);
        Assert.Equal(ExperimentSpecs.DefaultAdamSteps, s.Stitch.AdamSteps);
        Assert.Equal(ExperimentSpecs.DefaultEpochs, s.Sae.Epochs);
        Assert.Equal("topk", s.Sae.Architecture);
        Assert.Equal(["splice", "sae_eval"], s.Evaluations); // stage order, not the file's
        Assert.Equal(2, s.Probes.Count);
        Assert.Empty(ExperimentSpecs.Normalize(ExperimentSpecs.Parse("model_a: {model: a}\nmodel_b: {model: b}")).Sae.Widths);
        Assert.Equal([4, 8], ExperimentSpecs.Normalize(ExperimentSpecs.Parse("model_a: {model: a}\nmodel_b: {model: b}")).Sae.WidthMultiples);
    }

    [Fact]
    public void The_hash_ignores_the_name_and_spelled_out_defaults_but_not_a_setting()
    {
        var bare = ExperimentSpecs.Normalize(ExperimentSpecs.Parse("model_a: {model: a}\nmodel_b: {model: b}"));
        var spelled = ExperimentSpecs.Normalize(ExperimentSpecs.Parse("name: other\nmodel_a: {model: a}\nmodel_b: {model: b}\ncontext: 128\nsae: {k: 16, width_multiples: [4, 8]}\nstitch: {adam_steps: 2000}"));
        var changed = ExperimentSpecs.Normalize(ExperimentSpecs.Parse("model_a: {model: a}\nmodel_b: {model: b}\nsae: {k: 32}"));
        Assert.Equal(ExperimentSpecs.Hash(bare), ExperimentSpecs.Hash(spelled));
        Assert.NotEqual(ExperimentSpecs.Hash(bare), ExperimentSpecs.Hash(changed));
        Assert.Matches("^[0-9a-f]{64}$", ExperimentSpecs.Hash(bare));
    }

    [Theory]
    [InlineData("model_b: {model: b}", "spec.model_a.model")]
    [InlineData("model_a: {model: a}\nmodel_b: {model: b}\nsae: {k: -1}", "spec.sae.k")]
    [InlineData("model_a: {model: a}\nmodel_b: {model: b}\nsae: {widths: [64], width_multiples: [2]}", "spec.sae.widths")]
    [InlineData("model_a: {model: a}\nmodel_b: {model: b}\nevaluations: [splice, tea]", "spec.evaluations[1]")]
    [InlineData("model_a: {model: a}\nmodel_b: {model: b}\nlayers: {rule: vibes}", "spec.layers.rule")]
    [InlineData("model_a: {model: a}\nmodel_b: {model: b}\ncontext: 4", "spec.context")]
    [InlineData("model_a: {model: a}\nmodel_b: {model: b}\nprobes: [{dataset: {named: 'brown:pos'}, sae_a: {kind: sae, id: x}}]", "spec.probes[0]")]
    public void Invalid_specs_name_the_field(string yaml, string field)
    {
        var e = Assert.Throws<StitchingException>(() => ExperimentSpecs.Normalize(ExperimentSpecs.Parse(yaml)));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Equal(field, e.Field);
    }

    [Theory]
    [InlineData("model_a: {model: a}\nmodel_z: {model: b}", "model_z")]
    [InlineData("model_a: [1, 2", "not valid YAML")]
    [InlineData("- a\n- b", "mapping")]
    public void Unparseable_specs_say_why(string text, string says)
    {
        var e = Assert.Throws<StitchingException>(() => ExperimentSpecs.Parse(text));
        Assert.Contains(says, e.Message);
    }
}
