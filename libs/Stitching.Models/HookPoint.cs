using System.Text.RegularExpressions;
using Stitching.Core.Errors;

namespace Stitching.Models;

/// <summary>Where in the residual stream a hook reads or writes, named as TransformerLens names it.</summary>
public enum HookSite { ResidPre, ResidMid, ResidPost, AttnOut, MlpOut, FinalNormalized }

/// <summary>A parsed hook name: blocks.{l}.hook_resid_pre | hook_resid_mid | hook_resid_post | hook_attn_out | hook_mlp_out, or ln_final.hook_normalized.</summary>
public readonly partial record struct HookPoint(HookSite Site, int Layer)
{
    [GeneratedRegex(@"^blocks\.(\d+)\.hook_(resid_pre|resid_mid|resid_post|attn_out|mlp_out)$")]
    private static partial Regex BlockHook();

    public const string FinalNormalizedName = "ln_final.hook_normalized";

    public static HookPoint Parse(string name, int layers, string field = "hooks")
    {
        if (name == FinalNormalizedName) return new HookPoint(HookSite.FinalNormalized, layers);
        var m = BlockHook().Match(name ?? "");
        if (!m.Success)
            throw StitchingException.InvalidArgument(field, $"'{name}' is not a hook name; use blocks.{{l}}.hook_resid_pre, hook_resid_mid, hook_resid_post, hook_attn_out, hook_mlp_out or {FinalNormalizedName}.");
        var layer = int.Parse(m.Groups[1].Value);
        if (layer >= layers)
            throw StitchingException.InvalidArgument(field, $"'{name}' names layer {layer} but the model has layers 0..{layers - 1}.");
        var site = m.Groups[2].Value switch
        {
            "resid_pre" => HookSite.ResidPre, "resid_mid" => HookSite.ResidMid, "resid_post" => HookSite.ResidPost,
            "attn_out" => HookSite.AttnOut, _ => HookSite.MlpOut,
        };
        return new HookPoint(site, layer);
    }

    public override string ToString() => Site switch
    {
        HookSite.FinalNormalized => FinalNormalizedName,
        HookSite.ResidPre => $"blocks.{Layer}.hook_resid_pre",
        HookSite.ResidMid => $"blocks.{Layer}.hook_resid_mid",
        HookSite.ResidPost => $"blocks.{Layer}.hook_resid_post",
        HookSite.AttnOut => $"blocks.{Layer}.hook_attn_out",
        _ => $"blocks.{Layer}.hook_mlp_out",
    };
}
