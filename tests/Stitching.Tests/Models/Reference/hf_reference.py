#!/usr/bin/python3
"""Independent float64 numpy oracle for Hugging Face transformers' causal-LM forward passes.

    /usr/bin/python3 hf_reference.py FAMILY OUT_DIR [--seed N] [--dtype float32|bfloat16]
                                     [--prefix transformer.] [--check]

FAMILY: gpt2 gpt_neox gpt_neox_seq llama llama_tied qwen2 gemma2. Writes OUT_DIR/config.json,
OUT_DIR/model.safetensors (random weights, exact HF names and layout) and OUT_DIR/reference.safetensors
(F64 activations + I64 `ids`). --prefix applies to gpt2 only; --check prints self-consistency deltas.

Semantics mirrored (files read: transformers models/{gpt2,gpt_neox,llama,qwen2,gemma2}/modeling_*.py and
configuration_*.py, modeling_rope_utils.py, masking_utils.py; 4.4x and 5.x versions agree on all of it):
* RoPE is "rotate_half": dims [0, r/2) pair with [r/2, r) (NOT interleaved pairs); inv_freq[i] =
  theta^(-2i/r); angle = position * inv_freq; cos/sin tables are cat(freqs, freqs).
* GPT-NeoX query_key_value [3d, d] is laid out per head: output row h*3*hd + {0: q, 1: k, 2: v}*hd + j
  (HF views qkv as [.., H, 3*hd] then chunks in 3). Rotary applies to the first rotary_ndims =
  int(head_size * rotary_pct) dims of each head, the rest pass through. Parallel residual:
  x + attn(ln1(x)) + mlp(ln2(x)); sequential: m = x + attn(ln1(x)); m + mlp(ln2(m)).
* GPT-NeoX reads the rope base ONLY from rotary_emb_base (default 10000): GPTNeoXConfig assigns
  self.rope_theta = rotary_emb_base after super().__init__(**kwargs) (4.x), and 5.x's
  convert_rope_params_to_dict only pops rotary_emb_base. A top-level "rope_theta" key is ignored, so
  gpt_neox_seq writes "rope_theta": 20000.0 and the reference uses 10000.
* GQA (repeat_kv): query head h reads kv head h // (H / KV).
* Gemma-2: sliding layers are layer_types[i] == "sliding_attention" with default
  "sliding_attention" if (i + 1) % 2 else "full_attention" (older code: sliding_window if not layer_idx % 2),
  i.e. layers 0, 2, ... slide. Key j is visible from query i iff i - W < j <= i (masking_utils
  sliding_window_overlay: kv_idx > q_idx - sliding_window; older code masked tril(diagonal=-W)), so W keys
  including the query itself. Attention: scores * query_pre_attn_scalar**-0.5, then cap*tanh(s/cap), then mask.
  Embeddings are multiplied by sqrt(hidden_size) cast to the checkpoint dtype (f32: 5.656854152679443,
  bf16: 5.65625). RMSNorm is x/sqrt(mean(x^2)+eps) * (1 + w). Final logits cap*tanh(logits/cap).
* llama3 rope (_compute_llama3_parameters): wl = 2*pi/inv_freq; wl < orig/high_ff: unchanged;
  wl > orig/low_ff: inv_freq/factor; otherwise s = (orig/wl - low_ff)/(high_ff - low_ff),
  inv_freq*((1-s)/factor + s). Our llama config hits all three branches.
* Activations: "gelu" = exact erf GELU; "gelu_new" (GPT-2) and "gelu_pytorch_tanh" (Gemma) =
  0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))); "silu" = x*sigmoid(x).
Hooks: blocks.{l}.hook_resid_pre (layer input, after Gemma's scaling for l=0), hook_attn_out / hook_mlp_out
(branch outputs added to the residual; Gemma-2 after post_attention / post_feedforward norms),
hook_resid_mid (sequential families only), hook_resid_post; ln_final.hook_normalized (final norm output,
weight and bias applied); logits (after final softcap); loss_per_token [B, T-1] natural-log next-token CE.
Float32/float64 differences inside HF (fp32 inv_freq, fp32 RMSNorm) are below 1e-6 relative and not mirrored;
with --dtype bfloat16 the forward uses the bf16-rounded weights exactly, computed in float64.
"""
import argparse, json, math, os, struct
import numpy as np

L, D, V, P, B, T, INTER = 3, 32, 97, 64, 2, 11, 64


# ----------------------------------------------------------------------------- safetensors
def bf16_round(a):
    """float32 -> (bf16 bits as uint16, the rounded values as float32); round to nearest even."""
    u = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    bits = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return bits, (bits.astype(np.uint32) << 16).view(np.float32)


def save_safetensors(path, tensors, metadata=None):
    """tensors: name -> (dtype string, numpy array already holding that dtype's bytes)."""
    header, blobs, off = ({'__metadata__': metadata} if metadata else {}), [], 0
    for name, (dt, a) in tensors.items():
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {'dtype': dt, 'shape': list(a.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))


# ----------------------------------------------------------------------------- numerics (float64)
_erfc = np.frompyfunc(math.erfc, 1, 1)
ACT = {
    # exact GELU 0.5x(1 + erf(x/sqrt2)), written with erfc (same function, no cancellation for x << 0)
    'gelu': lambda x: 0.5 * x * _erfc(-x / math.sqrt(2.0)).astype(np.float64),
    'gelu_new': lambda x: 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3))),
    'gelu_pytorch_tanh': lambda x: 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3))),
    'silu': lambda x: 0.5 * x * (1.0 + np.tanh(0.5 * x)),  # == x * sigmoid(x), overflow-free
}


def linear(x, w, b=None):  # nn.Linear: weight [out, in]
    return x @ w.T if b is None else x @ w.T + b


def layer_norm(x, g, b, eps):  # nn.LayerNorm: biased variance
    m = x.mean(-1, keepdims=True)
    return (x - m) / np.sqrt(((x - m) ** 2).mean(-1, keepdims=True) + eps) * g + b


def rms_norm(x, w, eps, gemma=False):
    # Llama/Qwen2: w * normalize(x) (normalized in fp32, cast back, then times w); Gemma: normalize(x) * (1 + w)
    n = x / np.sqrt((x * x).mean(-1, keepdims=True) + eps)
    return n * (1.0 + w) if gemma else n * w


def softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def inv_freq_default(dim, theta):
    return 1.0 / theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim)


def inv_freq_llama3(inv, rs):
    factor, lo, hi = rs['factor'], rs['low_freq_factor'], rs['high_freq_factor']
    orig = rs['original_max_position_embeddings']
    wl = 2 * math.pi / inv
    s = (orig / wl - lo) / (hi - lo)
    out = np.where(wl > orig / lo, inv / factor, inv)
    medium = (wl >= orig / hi) & (wl <= orig / lo)
    return np.where(medium, (1 - s) * out / factor + s * out, out)


def rope(x, inv_freq, interleaved=False):
    """x [B, H, T, hd]; rotates the first 2*len(inv_freq) dims (rotate_half layout), passes the rest."""
    r = 2 * len(inv_freq)
    ang = np.arange(x.shape[2], dtype=np.float64)[:, None] * inv_freq[None, :]
    cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))
    xr, xp = x[..., :r], x[..., r:]
    if interleaved:  # NOT HF: only used by --check to show the layout matters
        xr = np.concatenate([xr[..., 0::2], xr[..., 1::2]], -1)
    rot = np.concatenate([-xr[..., r // 2:], xr[..., :r // 2]], -1)
    return np.concatenate([xr * cos + rot * sin, xp], -1)


def attention(q, k, v, scale, window=None, softcap=None):
    """q [B, H, T, hd], k/v [B, KV, T, hd] -> [B, T, H*hd]. Causal, optional sliding window and softcap."""
    rep = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)  # repeat_kv: head h uses kv head h // rep
    s = q @ k.swapaxes(-1, -2) * scale
    if softcap:
        s = softcap * np.tanh(s / softcap)  # Gemma-2: softcap before the mask
    i, j = np.arange(s.shape[-2])[:, None], np.arange(s.shape[-1])[None, :]
    ok = j <= i
    if window:
        ok &= j > i - window  # masking_utils.sliding_window_overlay
    o = softmax(np.where(ok, s, -np.inf)) @ v
    return o.transpose(0, 2, 1, 3).reshape(o.shape[0], o.shape[2], -1)


def heads(x, n):  # [B, T, n*hd] -> [B, n, T, hd]
    return x.reshape(x.shape[0], x.shape[1], n, -1).transpose(0, 2, 1, 3)


def finish(ref, x_norm, logits, ids):
    ref['ln_final.hook_normalized'] = x_norm
    ref['logits'] = logits
    lp = logits[:, :-1] - logits[:, :-1].max(-1, keepdims=True)
    lp = lp - np.log(np.exp(lp).sum(-1, keepdims=True))
    ref['loss_per_token'] = -np.take_along_axis(lp, ids[:, 1:, None], -1)[..., 0]
    return ref


# ----------------------------------------------------------------------------- families: weights + config
class Gen:
    def __init__(self, rng):
        self.rng, self.w = rng, {}

    def __call__(self, name, *shape, scale=0.2, mean=0.0):
        self.w[name] = (self.rng.standard_normal(shape) * scale + mean).astype(np.float32)


def build_gpt2(g):
    # Same draw order as the former inline script in Gpt2ParityTests.cs (seed 3 reproduces it bit for bit).
    g('wte.weight', V, D); g('wpe.weight', P, D); g('ln_f.weight', D); g('ln_f.bias', D)
    g.w['ln_f.weight'] += 1
    for l in range(L):
        for n in ('ln_1', 'ln_2'):
            g(f'h.{l}.{n}.weight', D); g.w[f'h.{l}.{n}.weight'] += 1; g(f'h.{l}.{n}.bias', D)
        g(f'h.{l}.attn.c_attn.weight', D, 3 * D); g(f'h.{l}.attn.c_attn.bias', 3 * D)
        g(f'h.{l}.attn.c_proj.weight', D, D); g(f'h.{l}.attn.c_proj.bias', D)
        g(f'h.{l}.mlp.c_fc.weight', D, 4 * D); g(f'h.{l}.mlp.c_fc.bias', 4 * D)
        g(f'h.{l}.mlp.c_proj.weight', 4 * D, D); g(f'h.{l}.mlp.c_proj.bias', D)
    buffers = {f'h.{l}.attn.bias': ('F32', np.tril(np.ones((1, 1, P, P), np.float32))) for l in range(L)}
    cfg = {'architectures': ['GPT2LMHeadModel'], 'model_type': 'gpt2', 'n_layer': L, 'n_head': 4, 'n_embd': D,
           'vocab_size': V, 'n_positions': P, 'n_ctx': P, 'n_inner': None, 'layer_norm_epsilon': 1e-5,
           'activation_function': 'gelu_new', 'tie_word_embeddings': True}
    return cfg, buffers


def build_neox(g, parallel):
    d = 64 if parallel else D  # parallel: hd 16 so rotary_ndims = int(16 * 0.25) = 4 (2 freqs; layout testable)
    H, I = 4, 4 * d
    hd, pct = d // H, (0.25 if parallel else 1.0)
    g('gpt_neox.embed_in.weight', V, d)
    for l in range(L):
        pre = f'gpt_neox.layers.{l}.'
        for n in ('input_layernorm', 'post_attention_layernorm'):
            g(pre + n + '.weight', d, scale=0.1, mean=1.0); g(pre + n + '.bias', d, scale=0.1)
        q, k, v = (g.rng.standard_normal((d, d)) * 0.2 for _ in range(3))  # [out = head-major, in]
        bq, bk, bv = (g.rng.standard_normal(d) * 0.2 for _ in range(3))
        g.w[pre + 'attention.query_key_value.weight'] = np.stack(
            [m.reshape(H, hd, d) for m in (q, k, v)], 1).reshape(3 * d, d).astype(np.float32)
        g.w[pre + 'attention.query_key_value.bias'] = np.stack(
            [b.reshape(H, hd) for b in (bq, bk, bv)], 1).reshape(3 * d).astype(np.float32)
        g(pre + 'attention.dense.weight', d, d); g(pre + 'attention.dense.bias', d)
        g(pre + 'mlp.dense_h_to_4h.weight', I, d); g(pre + 'mlp.dense_h_to_4h.bias', I)
        g(pre + 'mlp.dense_4h_to_h.weight', d, I); g(pre + 'mlp.dense_4h_to_h.bias', d)
    g('gpt_neox.final_layer_norm.weight', d, scale=0.1, mean=1.0); g('gpt_neox.final_layer_norm.bias', d, scale=0.1)
    g('embed_out.weight', V, d)
    cfg = {'architectures': ['GPTNeoXForCausalLM'], 'model_type': 'gpt_neox', 'hidden_size': d,
           'num_hidden_layers': L, 'num_attention_heads': H, 'intermediate_size': I, 'vocab_size': V,
           'max_position_embeddings': P, 'layer_norm_eps': 1e-5, 'hidden_act': 'gelu', 'rotary_pct': pct,
           'use_parallel_residual': parallel, 'attention_bias': True, 'tie_word_embeddings': False,
           'bos_token_id': 0, 'eos_token_id': 0, 'initializer_range': 0.02, 'use_cache': True}
    buffers = {}
    if parallel:  # Pythia-style: rotary_emb_base + legacy buffers that loaders must ignore
        cfg['rotary_emb_base'] = 10000
        r = int(hd * pct)
        for l in range(L):
            pre = f'gpt_neox.layers.{l}.attention.'
            buffers[pre + 'bias'] = ('BOOL', np.tril(np.ones((P, P), np.bool_)).reshape(1, 1, P, P))
            buffers[pre + 'masked_bias'] = ('F32', np.array(-1e9, np.float32))
            buffers[pre + 'rotary_emb.inv_freq'] = ('F32', inv_freq_default(r, 10000.0).astype(np.float32))
    else:  # ignored by HF (see module docstring): the forward uses the default base 10000
        cfg['rope_theta'] = 20000.0
    return cfg, buffers


def build_llama_like(g, fam):
    H = 4
    KV = {'llama': 2, 'llama_tied': 4, 'qwen2': 2, 'gemma2': 2}[fam]
    hd = 16 if fam in ('llama_tied', 'gemma2') else D // H
    gemma = fam == 'gemma2'
    nscale, nmean = (0.2, 0.0) if gemma else (0.1, 1.0)  # Gemma's (1 + w): w near 0
    qk_scale = 0.8 if gemma else 0.2  # large q/k so attn softcapping saturates for some scores
    g('model.embed_tokens.weight', V, D, scale=1.0 if gemma else 0.2)
    norms = ['input_layernorm', 'post_attention_layernorm'] + (
        ['pre_feedforward_layernorm', 'post_feedforward_layernorm'] if gemma else [])
    for l in range(L):
        pre = f'model.layers.{l}.'
        for n in norms:
            g(pre + n + '.weight', D, scale=nscale, mean=nmean)
        for n, rows, s in (('q', H, qk_scale), ('k', KV, qk_scale), ('v', KV, 0.2)):
            g(pre + f'self_attn.{n}_proj.weight', rows * hd, D, scale=s)
            if fam == 'qwen2':
                g(pre + f'self_attn.{n}_proj.bias', rows * hd)
        g(pre + 'self_attn.o_proj.weight', D, H * hd)
        g(pre + 'mlp.gate_proj.weight', INTER, D); g(pre + 'mlp.up_proj.weight', INTER, D)
        g(pre + 'mlp.down_proj.weight', D, INTER)
    # Gemma: final (1 + w) ~ 2 with unit-scale embeddings so some logits pass the final softcap of 30
    g('model.norm.weight', D, scale=0.3 if gemma else 0.1, mean=1.0)
    tied = fam != 'llama'
    if not tied:
        g('lm_head.weight', V, D)
    arch = {'llama': 'LlamaForCausalLM', 'llama_tied': 'LlamaForCausalLM', 'qwen2': 'Qwen2ForCausalLM',
            'gemma2': 'Gemma2ForCausalLM'}[fam]
    cfg = {'architectures': [arch], 'model_type': 'llama' if fam.startswith('llama') else fam, 'hidden_size': D,
           'num_hidden_layers': L, 'num_attention_heads': H, 'num_key_value_heads': KV, 'intermediate_size': INTER,
           'vocab_size': V, 'max_position_embeddings': P, 'tie_word_embeddings': tied, 'attention_dropout': 0.0,
           'initializer_range': 0.02, 'use_cache': True, 'bos_token_id': 1, 'eos_token_id': 2}
    if fam == 'llama':
        # original_max_position_embeddings 400 (max_position_embeddings 512 keeps HF's validation quiet):
        # wavelengths 6.3 / 168 / 4443 / 118000 hit the unchanged / smoothed / divided branches.
        cfg.update(rope_theta=500000.0, rms_norm_eps=1e-5, hidden_act='silu', attention_bias=False, mlp_bias=False,
                   pretraining_tp=1, max_position_embeddings=512,
                   rope_scaling={'rope_type': 'llama3', 'factor': 8.0, 'low_freq_factor': 1.0,
                                 'high_freq_factor': 4.0, 'original_max_position_embeddings': 400})
    elif fam == 'llama_tied':
        cfg.update(rope_theta=10000.0, rms_norm_eps=1e-5, hidden_act='silu', attention_bias=False, mlp_bias=False,
                   pretraining_tp=1, head_dim=hd, rope_scaling=None)
    elif fam == 'qwen2':
        cfg.update(rope_theta=1000000.0, rms_norm_eps=1e-6, hidden_act='silu', use_sliding_window=False,
                   sliding_window=P, max_window_layers=L, rope_scaling=None, bos_token_id=1, eos_token_id=2)
    else:
        cfg.update(head_dim=hd, rope_theta=10000.0, rms_norm_eps=1e-6, hidden_activation='gelu_pytorch_tanh',
                   hidden_act='gelu_pytorch_tanh', query_pre_attn_scalar=24, attn_logit_softcapping=50.0,
                   final_logit_softcapping=30.0, sliding_window=4, attention_bias=False, pad_token_id=0,
                   bos_token_id=2, eos_token_id=1,
                   layer_types=['sliding_attention' if (i + 1) % 2 else 'full_attention' for i in range(L)])
    return cfg, {}


# ----------------------------------------------------------------------------- forwards
def forward_gpt2(W, ids, cfg, opt):
    x = W['wte.weight'][ids] + W['wpe.weight'][np.arange(ids.shape[1])]
    H, eps, ref = cfg['n_head'], cfg['layer_norm_epsilon'], {}
    for l in range(L):
        p = f'h.{l}.'  # W is keyed without --prefix
        ref[f'blocks.{l}.hook_resid_pre'] = x
        h = layer_norm(x, W[p + 'ln_1.weight'], W[p + 'ln_1.bias'], eps)
        qkv = h @ W[p + 'attn.c_attn.weight'] + W[p + 'attn.c_attn.bias']  # Conv1D: weight [in, out]
        q, k, v = (heads(z, H) for z in np.split(qkv, 3, -1))
        att = attention(q, k, v, 1 / math.sqrt(q.shape[-1]))
        ao = att @ W[p + 'attn.c_proj.weight'] + W[p + 'attn.c_proj.bias']
        mid = x + ao
        m = ACT['gelu_new'](layer_norm(mid, W[p + 'ln_2.weight'], W[p + 'ln_2.bias'], eps) @ W[p + 'mlp.c_fc.weight']
                            + W[p + 'mlp.c_fc.bias']) @ W[p + 'mlp.c_proj.weight'] + W[p + 'mlp.c_proj.bias']
        x = mid + m
        ref.update({f'blocks.{l}.hook_attn_out': ao, f'blocks.{l}.hook_resid_mid': mid,
                    f'blocks.{l}.hook_mlp_out': m, f'blocks.{l}.hook_resid_post': x})
    xn = layer_norm(x, W['ln_f.weight'], W['ln_f.bias'], eps)
    return finish(ref, xn, xn @ W['wte.weight'].T, ids)


def forward_neox(W, ids, cfg, opt):
    d, H, eps = cfg['hidden_size'], cfg['num_attention_heads'], cfg['layer_norm_eps']
    hd = d // H
    inv = inv_freq_default(int(hd * cfg['rotary_pct']), float(cfg.get('rotary_emb_base', 10000)))
    act, par, ref = ACT[cfg['hidden_act']], cfg['use_parallel_residual'], {}
    x = W['gpt_neox.embed_in.weight'][ids]
    for l in range(L):
        p = f'gpt_neox.layers.{l}.'
        ref[f'blocks.{l}.hook_resid_pre'] = x
        qkv = linear(layer_norm(x, W[p + 'input_layernorm.weight'], W[p + 'input_layernorm.bias'], eps),
                     W[p + 'attention.query_key_value.weight'], W[p + 'attention.query_key_value.bias'])
        qkv = qkv.reshape(B, -1, H, 3 * hd).transpose(0, 2, 1, 3)  # per head: [q | k | v]
        q, k, v = qkv[..., :hd], qkv[..., hd:2 * hd], qkv[..., 2 * hd:]
        q, k = rope(q, inv, opt.get('interleaved')), rope(k, inv, opt.get('interleaved'))
        ao = linear(attention(q, k, v, hd ** -0.5), W[p + 'attention.dense.weight'], W[p + 'attention.dense.bias'])
        mlp_in = x if par else x + ao
        m = linear(act(linear(layer_norm(mlp_in, W[p + 'post_attention_layernorm.weight'],
                                         W[p + 'post_attention_layernorm.bias'], eps),
                              W[p + 'mlp.dense_h_to_4h.weight'], W[p + 'mlp.dense_h_to_4h.bias'])),
                   W[p + 'mlp.dense_4h_to_h.weight'], W[p + 'mlp.dense_4h_to_h.bias'])
        if not par:
            ref[f'blocks.{l}.hook_resid_mid'] = mlp_in
        x = mlp_in + m + (ao if par else 0.0)
        ref.update({f'blocks.{l}.hook_attn_out': ao, f'blocks.{l}.hook_mlp_out': m, f'blocks.{l}.hook_resid_post': x})
    xn = layer_norm(x, W['gpt_neox.final_layer_norm.weight'], W['gpt_neox.final_layer_norm.bias'], eps)
    return finish(ref, xn, xn @ W['embed_out.weight'].T, ids)


def forward_llama_like(W, ids, cfg, opt):
    H, KV, eps = cfg['num_attention_heads'], cfg['num_key_value_heads'], cfg['rms_norm_eps']
    hd = cfg.get('head_dim') or cfg['hidden_size'] // H
    gemma = cfg['model_type'] == 'gemma2'
    inv = inv_freq_default(hd, cfg['rope_theta'])
    if cfg.get('rope_scaling') and not opt.get('no_rope_scaling'):
        inv = inv_freq_llama3(inv, cfg['rope_scaling'])
    act = ACT[cfg['hidden_activation'] if gemma else cfg['hidden_act']]
    scale = cfg['query_pre_attn_scalar'] ** -0.5 if gemma else hd ** -0.5
    cap = None if opt.get('no_attn_softcap') else cfg.get('attn_logit_softcapping')
    norm = lambda x, n: rms_norm(x, W[n], eps, gemma)
    x = W['model.embed_tokens.weight'][ids]
    if gemma:  # normalizer = tensor(hidden_size ** 0.5, dtype=hidden dtype)
        x = x * (float(bf16_round(np.float32(math.sqrt(cfg['hidden_size'])))[1])
                 if cfg['torch_dtype'] == 'bfloat16' else float(np.float32(math.sqrt(cfg['hidden_size']))))
    ref = {}
    for l in range(L):
        p = f'model.layers.{l}.'
        ref[f'blocks.{l}.hook_resid_pre'] = x
        h = norm(x, p + 'input_layernorm.weight')
        q, k, v = (heads(linear(h, W[p + f'self_attn.{n}_proj.weight'], W.get(p + f'self_attn.{n}_proj.bias')), nh)
                   for n, nh in (('q', H), ('k', KV), ('v', KV)))
        window = cfg['sliding_window'] if gemma and cfg['layer_types'][l] == 'sliding_attention' \
            and not opt.get('no_sliding') else None
        ao = linear(attention(rope(q, inv), rope(k, inv), v, scale, window, cap), W[p + 'self_attn.o_proj.weight'])
        if gemma:
            ao = norm(ao, p + 'post_attention_layernorm.weight')
        mid = x + ao
        h = norm(mid, p + ('pre_feedforward_layernorm.weight' if gemma else 'post_attention_layernorm.weight'))
        m = linear(act(linear(h, W[p + 'mlp.gate_proj.weight'])) * linear(h, W[p + 'mlp.up_proj.weight']),
                   W[p + 'mlp.down_proj.weight'])
        if gemma:
            m = norm(m, p + 'post_feedforward_layernorm.weight')
        x = mid + m
        ref.update({f'blocks.{l}.hook_attn_out': ao, f'blocks.{l}.hook_resid_mid': mid,
                    f'blocks.{l}.hook_mlp_out': m, f'blocks.{l}.hook_resid_post': x})
    xn = norm(x, 'model.norm.weight')
    logits = xn @ W['model.embed_tokens.weight' if cfg['tie_word_embeddings'] else 'lm_head.weight'].T
    fcap = None if opt.get('no_final_softcap') else cfg.get('final_logit_softcapping')
    if fcap:
        logits = fcap * np.tanh(logits / fcap)
    return finish(ref, xn, logits, ids)


FAMILIES = {
    'gpt2': (build_gpt2, forward_gpt2),
    'gpt_neox': (lambda g: build_neox(g, True), forward_neox),
    'gpt_neox_seq': (lambda g: build_neox(g, False), forward_neox),
    'llama': (lambda g: build_llama_like(g, 'llama'), forward_llama_like),
    'llama_tied': (lambda g: build_llama_like(g, 'llama_tied'), forward_llama_like),
    'qwen2': (lambda g: build_llama_like(g, 'qwen2'), forward_llama_like),
    'gemma2': (lambda g: build_llama_like(g, 'gemma2'), forward_llama_like),
}


# ----------------------------------------------------------------------------- checks
def rel(x, y):
    return float(np.abs(x - y).max() / np.abs(x).max())


def self_check(fam, W, ids, cfg, ref, fwd):
    print(f'{fam}: max|logits| {np.abs(ref["logits"]).max():.3f}, mean loss {ref["loss_per_token"].mean():.4f}')
    if fam.startswith('gpt_neox'):
        d, H = cfg['hidden_size'], cfg['num_attention_heads']
        hd, w = d // H, W['gpt_neox.layers.0.attention.query_key_value.weight']
        per_head = w.reshape(H, 3, hd, d)  # row h*3*hd + c*hd + j
        q_direct = per_head[:, 0].reshape(d, d)
        print(f'  qkv layout round trip: |packed[h*3hd + j] - Wq[h*hd + j]| = '
              f'{np.abs(q_direct - w[np.arange(d) // hd * 3 * hd + np.arange(d) % hd]).max():.1e}')
        alt = fwd(W, ids, cfg, {'interleaved': True})['logits']
        print(f'  interleaved-rope logits delta {rel(ref["logits"], alt):.3e}'
              f' (rotary_ndims {int(hd * cfg["rotary_pct"])})')
    if fam == 'llama':
        inv = inv_freq_default(cfg['hidden_size'] // cfg['num_attention_heads'], cfg['rope_theta'])
        print(f'  llama3 inv_freq {inv} -> {inv_freq_llama3(inv, cfg["rope_scaling"])}')
        alt = fwd(W, ids, cfg, {'no_rope_scaling': True})['logits']
        print(f'  no-rope-scaling logits delta {rel(ref["logits"], alt):.3e}')
    if fam == 'gemma2':
        raw = fwd(W, ids, cfg, {'no_final_softcap': True})['logits']
        print(f'  final logits: max|raw| {np.abs(raw).max():.1f}, fraction |raw| > 30 {(np.abs(raw) > 30).mean():.3f}; '
              f'no-final-softcap logits delta {rel(ref["logits"], raw):.3e}')
        noattn = fwd(W, ids, cfg, {'no_attn_softcap': True})
        print(f'  no-attn-softcap deltas: logits {rel(ref["logits"], noattn["logits"]):.3e}, layer-0 attn_out '
              f'{rel(ref["blocks.0.hook_attn_out"], noattn["blocks.0.hook_attn_out"]):.3e}')
        nosl = fwd(W, ids, cfg, {'no_sliding': True})
        print(f'  no-sliding deltas: logits {rel(ref["logits"], nosl["logits"]):.3e}, layer-0 attn_out '
              f'{rel(ref["blocks.0.hook_attn_out"], nosl["blocks.0.hook_attn_out"]):.3e}')
        # raw attention scores of layer 0 to show attn softcap saturation
        hd, p = cfg['head_dim'], 'model.layers.0.'
        h = rms_norm(ref['blocks.0.hook_resid_pre'], W[p + 'input_layernorm.weight'], cfg['rms_norm_eps'], True)
        inv = inv_freq_default(hd, cfg['rope_theta'])
        q = rope(heads(linear(h, W[p + 'self_attn.q_proj.weight']), 4), inv)
        k = np.repeat(rope(heads(linear(h, W[p + 'self_attn.k_proj.weight']), 2), inv), 2, axis=1)
        s = q @ k.swapaxes(-1, -2) * cfg['query_pre_attn_scalar'] ** -0.5
        print(f'  layer-0 attn scores: max|s| {np.abs(s).max():.1f}, fraction |s| > 25 (tanh(s/50) off by > 7%): '
              f'{(np.abs(s) > 25).mean():.3f}')


# ----------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('family', choices=sorted(FAMILIES))
    ap.add_argument('out')
    ap.add_argument('--seed', type=int, default=3)
    ap.add_argument('--dtype', choices=['float32', 'bfloat16'], default='float32')
    ap.add_argument('--prefix', default='', help="gpt2 only: tensor-name prefix, e.g. 'transformer.'")
    ap.add_argument('--check', action='store_true', help='print self-consistency deltas')
    a = ap.parse_args()
    build, fwd = FAMILIES[a.family]
    os.makedirs(a.out, exist_ok=True)
    g = Gen(np.random.default_rng(a.seed))
    cfg, buffers = build(g)
    cfg['torch_dtype'] = a.dtype
    ids = g.rng.integers(0, V, (B, T))

    stored, W = {}, {}
    for name, w32 in g.w.items():
        if a.dtype == 'bfloat16':
            bits, w32 = bf16_round(w32)
            stored[name] = ('BF16', bits)
        else:
            stored[name] = ('F32', w32)
        W[name] = w32.astype(np.float64)
    prefix = a.prefix if a.family == 'gpt2' else ''
    save_safetensors(os.path.join(a.out, 'model.safetensors'),
                     {prefix + k: v for k, v in {**stored, **buffers}.items()}, {'format': 'pt'})
    with open(os.path.join(a.out, 'config.json'), 'w') as f:
        json.dump(cfg, f, indent=2)

    ref = fwd(W, ids, cfg, {})
    for n, t in ref.items():
        assert np.isfinite(t).all(), f'{n} has non-finite values'
    n_mid = 0 if cfg.get('use_parallel_residual') and a.family == 'gpt_neox' else L
    assert len(ref) == 4 * L + n_mid + 3 and ref['logits'].shape == (B, T, V)
    assert ref['loss_per_token'].shape == (B, T - 1)
    save_safetensors(os.path.join(a.out, 'reference.safetensors'),
                     {'ids': ('I64', ids.astype(np.int64)),
                      **{n: ('F64', np.ascontiguousarray(t, np.float64)) for n, t in ref.items()}})
    if a.check:
        self_check(a.family, W, ids, cfg, ref, fwd)


if __name__ == '__main__':
    main()
