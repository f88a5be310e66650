using Stitching.Core.Errors;
using Proto = Stitching.Contracts.Activations.V1;
using Tok = Stitching.Models.Tokenization.BosPolicy;

namespace Stitching.Activations.Runtime;

/// <summary>The one mapping of the wire's BosPolicy onto the tokenizer's; values the contract does not define are INVALID_ARGUMENT.</summary>
public static class BosPolicies
{
    public static Tok From(Proto.BosPolicy p, string field) => p switch
    {
        Proto.BosPolicy.Always => Tok.Always,
        Proto.BosPolicy.Never => Tok.Never,
        Proto.BosPolicy.Unspecified => Tok.Model,
        _ => throw StitchingException.InvalidArgument(field, $"{(int)p} is not a BOS policy; use BOS_POLICY_UNSPECIFIED (the tokenizer's default), BOS_POLICY_ALWAYS or BOS_POLICY_NEVER."),
    };
}
