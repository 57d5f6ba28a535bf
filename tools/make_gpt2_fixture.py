#!/usr/bin/python3
"""Writes tests/data/gpt2_tiny/: a small random-weight GPT-2 in Hugging Face safetensors layout, and
reference activations and logits computed by an independent forward pass written here with plain torch
ops in float64 (no transformers package; Debian's python3-torch).

Model: vocab 256, n_positions 32, n_embd 48, n_head 4 (head size 12), n_layer 4, n_inner 4*n_embd,
layer_norm_epsilon 1e-5, activation gelu_new (tanh approximation), tied LM head (logits = ln_f(x) · wteᵀ).

Files:
  model.safetensors       F32. Names and layout of the official `gpt2` checkpoint: no "transformer."
                          prefix, Conv1D weights stored [in, out] (h.N.attn.c_attn.weight is
                          [n_embd, 3*n_embd]), and the causal-mask buffers h.N.attn.bias
                          [1, 1, n_positions, n_positions] that a loader must ignore.
  model_bf16.safetensors  the same weights rounded to BF16, under the "transformer."-prefixed names that
                          GPT2LMHeadModel.state_dict() produces (no mask buffers).
  config.json             Hugging Face GPT-2 config keys.
  reference.safetensors   tokens I32 [T]; logits F32 [T, vocab] (float64 forward on the F32 weights);
                          logits_bf16 F32 [T, vocab] (float64 forward on the BF16-rounded weights);
                          hidden.K F32 [T, n_embd] = the residual stream after embedding (K = 0) and
                          after block K (K = 1..n_layer), from the F32 weights.

Usage: /usr/bin/python3 tools/make_gpt2_fixture.py tests/data/gpt2_tiny
"""
import json
import math
import os
import struct
import sys

import torch

CONFIG = {
    "model_type": "gpt2",
    "architectures": ["GPT2LMHeadModel"],
    "vocab_size": 256,
    "n_positions": 32,
    "n_ctx": 32,
    "n_embd": 48,
    "n_head": 4,
    "n_layer": 4,
    "n_inner": None,
    "layer_norm_epsilon": 1e-5,
    "activation_function": "gelu_new",
    "tie_word_embeddings": True,
}
SEED = 20261122
NUM_TOKENS = 12


def make_weights(gen):
    c = CONFIG
    e, v, p = c["n_embd"], c["vocab_size"], c["n_positions"]

    def randn(*shape, std):
        return torch.randn(*shape, generator=gen, dtype=torch.float32) * std

    w = {
        "wte.weight": randn(v, e, std=0.5),
        "wpe.weight": randn(p, e, std=0.2),
    }
    for layer in range(c["n_layer"]):
        h = f"h.{layer}."
        w[h + "ln_1.weight"] = 1.0 + randn(e, std=0.1)
        w[h + "ln_1.bias"] = randn(e, std=0.1)
        w[h + "attn.bias"] = torch.tril(torch.ones(p, p, dtype=torch.float32)).view(1, 1, p, p)
        w[h + "attn.c_attn.weight"] = randn(e, 3 * e, std=0.2)
        w[h + "attn.c_attn.bias"] = randn(3 * e, std=0.1)
        w[h + "attn.c_proj.weight"] = randn(e, e, std=0.2)
        w[h + "attn.c_proj.bias"] = randn(e, std=0.1)
        w[h + "ln_2.weight"] = 1.0 + randn(e, std=0.1)
        w[h + "ln_2.bias"] = randn(e, std=0.1)
        w[h + "mlp.c_fc.weight"] = randn(e, 4 * e, std=0.2)
        w[h + "mlp.c_fc.bias"] = randn(4 * e, std=0.1)
        w[h + "mlp.c_proj.weight"] = randn(4 * e, e, std=0.1)
        w[h + "mlp.c_proj.bias"] = randn(e, std=0.1)
    w["ln_f.weight"] = 1.0 + randn(e, std=0.1)
    w["ln_f.bias"] = randn(e, std=0.1)
    return w


def layer_norm(x, weight, bias, eps):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def forward(w, tokens):
    """Float64 forward pass over the whole sequence; returns (hidden states list, logits)."""
    c = CONFIG
    e, nh, eps = c["n_embd"], c["n_head"], c["layer_norm_epsilon"]
    d = e // nh
    w = {k: t.to(torch.float64) for k, t in w.items()}
    t = len(tokens)
    idx = torch.tensor(tokens, dtype=torch.long)
    x = w["wte.weight"][idx] + w["wpe.weight"][:t]
    hidden = [x.clone()]
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
    for layer in range(c["n_layer"]):
        h = f"h.{layer}."
        a = layer_norm(x, w[h + "ln_1.weight"], w[h + "ln_1.bias"], eps)
        qkv = a @ w[h + "attn.c_attn.weight"] + w[h + "attn.c_attn.bias"]
        q, k, v = qkv.split(e, dim=-1)
        q = q.view(t, nh, d).transpose(0, 1)
        k = k.view(t, nh, d).transpose(0, 1)
        v = v.view(t, nh, d).transpose(0, 1)
        scores = (q @ k.transpose(1, 2)) / math.sqrt(d)
        scores = scores.masked_fill(~causal, float("-inf"))
        att = torch.softmax(scores, dim=-1)
        y = (att @ v).transpose(0, 1).reshape(t, e)
        x = x + (y @ w[h + "attn.c_proj.weight"] + w[h + "attn.c_proj.bias"])
        m = layer_norm(x, w[h + "ln_2.weight"], w[h + "ln_2.bias"], eps)
        m = gelu_new(m @ w[h + "mlp.c_fc.weight"] + w[h + "mlp.c_fc.bias"])
        x = x + (m @ w[h + "mlp.c_proj.weight"] + w[h + "mlp.c_proj.bias"])
        hidden.append(x.clone())
    out = layer_norm(x, w["ln_f.weight"], w["ln_f.bias"], eps)
    logits = out @ w["wte.weight"].T
    return hidden, logits


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata):
    names = {torch.float32: "F32", torch.bfloat16: "BF16", torch.int32: "I32"}
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        b = tensor_bytes(t)
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "tests/data/gpt2_tiny"
    os.makedirs(out_dir, exist_ok=True)
    gen = torch.Generator().manual_seed(SEED)
    w = make_weights(gen)
    tokens = torch.randint(0, CONFIG["vocab_size"], (NUM_TOKENS,), generator=gen).tolist()

    write_safetensors(os.path.join(out_dir, "model.safetensors"), w, {"format": "pt"})
    w_bf16 = {k: t.to(torch.bfloat16) for k, t in w.items() if not k.endswith(".attn.bias")}
    write_safetensors(
        os.path.join(out_dir, "model_bf16.safetensors"), {"transformer." + k: t for k, t in w_bf16.items()}, {"format": "pt"}
    )
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")

    hidden, logits = forward(w, tokens)
    _, logits_bf16 = forward({k: t.to(torch.float32) for k, t in w_bf16.items()}, tokens)
    ref = {"tokens": torch.tensor(tokens, dtype=torch.int32), "logits": logits.to(torch.float32),
           "logits_bf16": logits_bf16.to(torch.float32)}
    for i, h in enumerate(hidden):
        ref[f"hidden.{i}"] = h.to(torch.float32)
    write_safetensors(os.path.join(out_dir, "reference.safetensors"), ref,
                      {"generator": "tools/make_gpt2_fixture.py", "torch": torch.__version__, "seed": str(SEED),
                       "precision": "float64 forward, stored as float32"})


if __name__ == "__main__":
    main()
