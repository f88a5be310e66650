using System.Collections;
using System.Text.RegularExpressions;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Health.V1;
using Microsoft.Extensions.DependencyInjection;
using Stitching.Client;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Sae.V1;
using Stitching.Contracts.Stitch.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Tensors;
using Stitching.Tests.Fixtures;
using Xunit.Abstractions;

namespace Stitching.Tests.Integration;

/// <summary>The hostile suite's baseline: one valid request per RPC of every contract, over artifacts made here.</summary>
public partial class HostileClientTests
{
    private static async Task<List<(string Rpc, IMessage Request)>> BaselineAsync(TestServer server, string allowed)
    {
        var ch = server.Channel;
        var activations = new ActivationsService.ActivationsServiceClient(ch);
        var extract = new ExtractRequest
        {
            Corpus = new CorpusSpec { Texts = new InlineTexts { Texts = { TinyModels.Documents() } } },
            Tokens = new TokenSetSpec { ContextLength = 16, MaxTokens = 40 * 16 }, BatchSize = 8, ShardTokens = 256,
            Models =
            {
                new ModelHooks { Model = new ModelSpec { Model = "tiny-a" }, Hooks = { "blocks.1.hook_resid_pre" } },
                new ModelHooks { Model = new ModelSpec { Model = "tiny-b" }, Hooks = { "blocks.2.hook_resid_pre" } },
            },
        };
        var extracted = await OperationWaiter.SucceededAsync(ch, (await activations.ExtractAsync(extract)).Id);
        var sets = extracted.Result.Unpack<ExtractResult>();
        var (setA, setB) = (sets.ActivationSets[0], sets.ActivationSets[1]);
        var fit = new FitRequest { A = new ActivationSource { Artifact = setA }, B = new ActivationSource { Artifact = setB } };
        var stitch = (await OperationWaiter.SucceededAsync(ch, (await new StitchService.StitchServiceClient(ch).FitAsync(fit)).Id)).Result.Unpack<FitResult>().Stitch;
        var train = new TrainRequest { ActivationSet = setA, Sae = new SaeSpec { DSae = 16, K = 2 }, Tokens = 256, BatchSize = 64, EvalActivationSet = setA, EvalTokens = 64 };
        var sae = (await OperationWaiter.SucceededAsync(ch, (await new SaeService.SaeServiceClient(ch).TrainAsync(train)).Id)).Result.Unpack<TrainResult>().Sae.Ref;
        var warm = new TrainRequest(train) { Init = sae, Sae = new SaeSpec() };
        // steering: both classes in train, in the even and the odd validation texts, baseline texts in test
        var steeringTexts = new Stitching.Contracts.Eval.V1.ProbeDataset();
        var layout = new[] { ("train", 0), ("train", 1), ("train", 0), ("train", 1), ("validation", 0), ("validation", 1), ("validation", 1), ("validation", 0), ("test", 0), ("test", 1) };
        foreach (var ((split, label), text) in layout.Zip(TinyModels.Documents()))
            steeringTexts.Examples.Add(new Stitching.Contracts.Eval.V1.LabelledText { Text = text, Label = label, Split = split });
        var transferred = (await new SaeService.SaeServiceClient(ch).TransferAsync(new TransferRequest { Sae = sae, Stitch = stitch })).Ref;
        var probeTexts = new Stitching.Contracts.Eval.V1.ProbeDataset();
        foreach (var (text, i) in TinyModels.Documents().Take(10).Select((t, i) => (t, i)))
            probeTexts.Examples.Add(new Stitching.Contracts.Eval.V1.LabelledText { Text = text, Label = i % 2, Split = (i % 5) switch { < 3 => "train", 3 => "validation", _ => "test" } });
        var tensors = new ArtifactRef { Kind = "tensors", Id = "hostile-upload" };
        await TensorTransfer.UploadAsync(new ArtifactsService.ArtifactsServiceClient(ch), tensors, [HostTensor.FromFloats("activations", new float[8 * 4], 8, 4)]);
        var stitchTensors = new ArtifactRef { Kind = "tensors", Id = "hostile-stitch" };
        await TensorTransfer.UploadAsync(new ArtifactsService.ArtifactsServiceClient(ch), stitchTensors,
            await TensorTransfer.ReadAsync(new ArtifactsService.ArtifactsServiceClient(ch), stitch, file: "stitch.safetensors"));

        var widthA = 32; // tiny-a's width (TinyModels)
        using (var sae0 = Stitching.Sae.Storage.SaeArtifacts.Load(server.Server.Services.GetRequiredService<ArtifactStore>(), sae, "sae"))
            Stitching.Sae.Interop.SaeLensFormat.WriteFolder(Path.Combine(allowed, "to-import"), sae0);
        Tensor Floats(string name, params long[] shape) => TensorCodec.ToProto(HostTensor.FromFloats(name, new float[shape.Aggregate(1L, (a, b) => a * b)], shape));
        Tensor Ids(params int[] ids) => TensorCodec.ToProto(new HostTensor("token_ids", Stitching.Core.Tensors.DType.I32, [1, ids.Length], System.Runtime.InteropServices.MemoryMarshal.AsBytes(ids.AsSpan()).ToArray()));
        var tinyA = new ModelSpec { Model = "tiny-a" };
        var setFile = (await new ArtifactsService.ArtifactsServiceClient(ch).GetArtifactAsync(new GetArtifactRequest { Ref = setA })).Files[0].Name;
        var experiment = new Stitching.Contracts.Eval.V1.ExperimentSpec
        {
            Name = "hostile", ModelA = tinyA, ModelB = new ModelSpec { Model = "tiny-b" },
            TrainCorpus = new CorpusSpec { Texts = new InlineTexts { Texts = { TinyModels.Documents().Take(20) } } },
            TestCorpus = new CorpusSpec { Texts = new InlineTexts { Texts = { TinyModels.Documents().Skip(20).Take(5) } } },
            Context = 16, TrainTokens = 256, TestRows = 4, SpliceRows = 2,
            Layers = new Stitching.Contracts.Eval.V1.LayerSelection { Rule = "heldout_fvu", LayerA = 1 },
            Stitch = new Stitching.Contracts.Eval.V1.StitchSettings { AdamSteps = -1 },
            Sae = new Stitching.Contracts.Eval.V1.SaeSettings { Widths = { 16 }, K = 2, BatchSize = 64, Epochs = 1 },
            Evaluations = { "splice" },
        };
        return
        [
            ("ListModels", new ListModelsRequest()),
            ("DescribeModel", new DescribeModelRequest { Model = tinyA }),
            ("LoadModel", new LoadModelRequest { Model = tinyA }),
            ("Tokenize", new TokenizeRequest { Model = tinyA, Texts = { "hello world" } }),
            ("Detokenize", new DetokenizeRequest { Model = tinyA, Ids = { 5, 6, 7 } }),
            ("Forward", new Contracts.Activations.V1.ForwardRequest
            {
                Model = tinyA, TokenIds = Ids(5, 6, 7, 8), Capture = { "blocks.1.hook_resid_pre" }, ReturnLoss = true,
                Interventions = { new Intervention { Hook = "blocks.1.hook_resid_pre", Add = new AddVector { Vector = Floats("v", widthA), Scale = 1 } } },
            }),
            ("Forward", new Contracts.Activations.V1.ForwardRequest { Model = tinyA, Text = "hello", StartLayer = 1, StartResidual = Floats("r", 1, 1, widthA) }),
            ("Forward", new Contracts.Activations.V1.ForwardRequest
            {
                Model = tinyA, TokenIds = Ids(5, 6, 7),
                Interventions = { new Intervention { Hook = "blocks.1.hook_resid_pre", Affine = new AffineChain { Maps = { new Affine { Matrix = Floats("m", widthA, widthA), Bias = Floats("b", widthA) } } } } },
            }),
            ("Generate", new GenerateRequest { Model = tinyA, Prompt = "hello", MaxNewTokens = 3, Temperature = 0.8, TopK = 5, TopP = 0.9, Seed = 1 }),
            ("Extract", extract),
            ("ReadActivations", new ReadActivationsRequest { ActivationSet = setA, Shards = { 0 }, Names = { "token_ids" } }),
            ("ReadWeights", new ReadWeightsRequest { Model = tinyA, Names = { "unembed.W_U" } }),
            ("ListArtifacts", new ListArtifactsRequest { Kind = "sae" }),
            ("GetArtifact", new GetArtifactRequest { Ref = setA }),
            ("ReadTensors", new ReadTensorsRequest { Ref = tensors, Names = { "activations" } }),
            ("GetOperation", new GetOperationRequest { Id = extracted.Id }),
            ("WatchOperation", new WatchOperationRequest { Id = extracted.Id }),
            ("ListOperations", new ListOperationsRequest { Limit = 5 }),
            ("CancelOperation", new CancelOperationRequest { Id = extracted.Id }),
            ("GetServerInfo", new GetServerInfoRequest()),
            ("MatchLayers", new MatchLayersRequest { ActivationSetA = setA, ActivationSetB = setB, MaxTokens = 64 }),
            ("Fit", fit),
            ("Fit", new FitRequest(fit) { Method = "adam", Adam = new AdamSettings { Epochs = 1, BatchSize = 64 } }),
            ("ImportStitch", new ImportStitchRequest { Tensors = stitchTensors, Id = "hostile-imported" }),
            ("Apply", new ApplyRequest { Stitch = stitch, Direction = Direction.Up, Activations = Floats("x", 2, widthA) }),
            ("TransferDirection", new TransferDirectionRequest { Stitch = stitch, Direction = Direction.Up, Vectors = Floats("v", widthA) }),
            ("EvaluateSplice", new EvaluateSpliceRequest
            {
                ModelA = tinyA, ModelB = new ModelSpec { Model = "tiny-b" }, LayerA = 1, LayerB = 2, Stitch = stitch,
                TokenIds = Ids(5, 6, 7, 8, 9, 10), MaxRows = 2, BatchSize = 2,
            }),
            ("Train", train),
            ("Train", warm),
            ("Transfer", new TransferRequest { Sae = sae, Stitch = stitch }),
            ("Encode", new EncodeRequest { Sae = sae, Activations = Floats("x", 2, widthA) }),
            ("Decode", new DecodeRequest { Sae = sae, Latents = Floats("f", 2, 16) }),
            ("Describe", new DescribeRequest { Sae = sae }),
            ("Compare", new CompareRequest { Scratch = sae, Warm = sae }),
            ("Export", new ExportRequest { Sae = sae, Path = Path.Combine(allowed, "exported") }),
            ("Import", new ImportRequest { Path = Path.Combine(allowed, "to-import"), Id = "hostile-import" }),
            ("StartOperation", new StartOperationRequest { Kind = "sae.train", Spec = Any.Pack(train) }),
            ("UnloadModel", new UnloadModelRequest { Model = new ModelSpec { Model = "tiny-b" } }),
            ("EvaluateProbes", new Stitching.Contracts.Eval.V1.EvaluateProbesRequest
            {
                ModelA = tinyA, ModelB = new ModelSpec { Model = "tiny-b" }, Stitch = stitch, SaeA = sae, SaeTransferred = transferred, SaeB = transferred,
                Dataset = probeTexts, K = { 1 }, L2 = { 0.1 }, Context = 16, MaxTokensPerSplit = 128, MaxExamplesPerClass = 8, BatchSize = 4, Seed = 3,
            }),
            ("EvaluateSteering", new Stitching.Contracts.Eval.V1.EvaluateSteeringRequest
            {
                ModelA = tinyA, ModelB = new ModelSpec { Model = "tiny-b" }, HookA = "blocks.1.hook_resid_pre", HookB = "blocks.2.hook_resid_pre", Stitch = stitch,
                Dataset = steeringTexts, Target = 1, Prompts = 2, PromptWords = 4, NewTokens = 2, Context = 16, MaxTokens = 256, Seed = 1,
            }),
            ("EvaluateFeatures", new Stitching.Contracts.Eval.V1.EvaluateFeaturesRequest
            {
                ModelA = tinyA, ModelB = new ModelSpec { Model = "tiny-b" }, SaeA = sae, SaeTransferred = transferred, Stitch = stitch,
                MaxTokens = 256, Context = 32, Sentences = 2, Rewrites = 2, MinActive = 2, Seed = 1,
            }),
            ("ReadFile", new ReadFileRequest { Ref = setA, File = setFile }),
            ("PlanExperiment", new Stitching.Contracts.Eval.V1.RunExperimentRequest { Spec = experiment }),
            ("RunExperiment", new Stitching.Contracts.Eval.V1.RunExperimentRequest { Spec = experiment }),
            ("EvaluateSae", new Stitching.Contracts.Eval.V1.EvaluateSaeRequest { Model = tinyA, Sae = sae, Hook = "blocks.1.hook_resid_pre", TokenIds = Ids(5, 6, 7, 8), BatchSize = 2 }),
        ];
    }
}
