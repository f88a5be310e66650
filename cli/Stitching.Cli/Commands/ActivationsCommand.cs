using System.CommandLine;
using Stitching.Contracts.Activations.V1;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;

namespace Stitching.Cli.Commands;

/// <summary>
/// stitch activations: one forward pass, written as a safetensors file with one float32 tensor per hook,
/// named exactly as the hook, shape [T, d] (and logits [T, V] with --logits).
/// </summary>
public static class ActivationsCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Checkpoint folder, model-store name or Hugging Face repo id.", Required = true };
        var tokenIds = new Option<string?>("--token-ids") { Description = "Comma-separated token ids, e.g. 1,2,3." };
        var text = new Option<string?>("--text") { Description = "Text to tokenize instead of --token-ids." };
        var bos = new Option<string>("--bos") { Description = "BOS policy for --text: model, always, never.", DefaultValueFactory = _ => "model" };
        var hooks = new Option<string>("--hooks") { Description = "Comma-separated hook names, e.g. blocks.0.hook_resid_pre,ln_final.hook_normalized.", Required = true };
        var output = new Option<string>("--out") { Description = "Output safetensors file.", Required = true };
        var logits = new Option<bool>("--logits") { Description = "Also write logits [T, V]." };
        var dtype = new Option<string>("--dtype") { Description = "Model dtype: float32, bfloat16.", DefaultValueFactory = _ => "float32" };
        var command = new Command("activations", "Run one sequence through a model and write the hooks' activations to a safetensors file.")
        {
            model, tokenIds, text, bos, hooks, output, logits, dtype,
        };
        command.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var request = new ForwardRequest
            {
                Model = new ModelSpec { Model = ModelArgument(parse.GetValue(model)!), Dtype = parse.GetValue(dtype)! },
                ReturnLogits = parse.GetValue(logits),
                Capture = { parse.GetValue(hooks)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) },
            };
            if (parse.GetValue(tokenIds) is { Length: > 0 } ids)
            {
                var values = ids.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    .Select(v => long.TryParse(v, out var x) ? x : throw new ArgumentException($"--token-ids: '{v}' is not an integer.")).ToArray();
                request.TokenIds = TensorCodec.ToProto(new HostTensor("token_ids", DType.I64, [values.Length], values.SelectMany(BitConverter.GetBytes).ToArray()));
            }
            else if (parse.GetValue(text) is { Length: > 0 } t) { request.Text = t; request.BosPolicy = ExtractCommand.ParseBos(parse.GetValue(bos)!); }
            else throw new ArgumentException("give --token-ids or --text.");

            var response = await new ActivationsService.ActivationsServiceClient(c.Channel).ForwardAsync(request, cancellationToken: ct);
            var tensors = response.Captured.Select(p => Squeeze(TensorCodec.FromProto(p))).ToList();
            if (response.Logits is not null) tensors.Add(Squeeze(TensorCodec.FromProto(response.Logits)));
            var path = parse.GetValue(output)!;
            SafetensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["model"] = request.Model.Model });
            CliOutput.Print(parse, new { path = Path.GetFullPath(path), tensors = tensors.Select(x => new { name = x.Name, shape = x.Shape, dtype = x.DType.ToString() }) }, () =>
            {
                foreach (var t2 in tensors) Console.WriteLine($"{t2.Name} [{string.Join(", ", t2.Shape)}] {t2.DType}");
                Console.WriteLine($"wrote {Path.GetFullPath(path)}");
            });
            return 0;
        }));
        return command;
    }

    /// <summary>A local folder is passed as an absolute path (the embedded server resolves it); anything else as given.</summary>
    private static string ModelArgument(string model) => Directory.Exists(model) ? Path.GetFullPath(model) : model;

    /// <summary>[1, T, d] -> [T, d]: the batch of one is dropped.</summary>
    private static HostTensor Squeeze(HostTensor t) => t.Shape.Length == 3 && t.Shape[0] == 1 ? new HostTensor(t.Name, t.DType, t.Shape[1..], t.Data) : t;
}
