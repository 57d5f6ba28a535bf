#!/usr/bin/python3
"""Writes the seed corpus of the model_executor fuzz target: complete, tiny models in each format the
runtime reads (a llama2.c checkpoint, a GPT-2 safetensors file with n_head in __metadata__).

Usage: python3 tools/make_runtime_fuzz_seeds.py fuzz/corpus/model_executor
"""
import json
import os
import random
import struct
import sys


def floats(n, rnd):
    return struct.pack(f"<{n}f", *[rnd.uniform(-0.5, 0.5) for _ in range(n)])


def llama2c(rnd):
    dim, hidden, layers, heads, kv, vocab, seq = 8, 16, 2, 2, 1, 16, 8
    hd = dim // heads
    out = struct.pack("<7i", dim, hidden, layers, heads, kv, vocab, seq)
    out += floats(vocab * dim, rnd)                 # token embedding
    out += floats(layers * dim, rnd)                # attention rmsnorm
    out += floats(layers * dim * dim, rnd)          # wq
    out += floats(layers * kv * hd * dim, rnd) * 2  # wk, wv (same values, fine for a seed)
    out += floats(layers * dim * dim, rnd)          # wo
    out += floats(layers * dim, rnd)                # ffn rmsnorm
    out += floats(layers * hidden * dim, rnd)       # w1
    out += floats(layers * dim * hidden, rnd)       # w2
    out += floats(layers * hidden * dim, rnd)       # w3
    out += floats(dim, rnd)                         # final rmsnorm
    out += floats(seq * hd // 2, rnd) * 2           # legacy freq_cis real / imag
    return out


def gpt2_safetensors(rnd):
    dim, layers, vocab, ctx, ffn = 8, 2, 16, 8, 32
    shapes = {"wte.weight": [vocab, dim], "wpe.weight": [ctx, dim], "ln_f.weight": [dim], "ln_f.bias": [dim]}
    for l in range(layers):
        p = f"h.{l}."
        shapes.update({p + "ln_1.weight": [dim], p + "ln_1.bias": [dim], p + "ln_2.weight": [dim],
                       p + "ln_2.bias": [dim], p + "attn.c_attn.weight": [dim, 3 * dim],
                       p + "attn.c_attn.bias": [3 * dim], p + "attn.c_proj.weight": [dim, dim],
                       p + "attn.c_proj.bias": [dim], p + "mlp.c_fc.weight": [dim, ffn], p + "mlp.c_fc.bias": [ffn],
                       p + "mlp.c_proj.weight": [ffn, dim], p + "mlp.c_proj.bias": [dim]})
    header, data = {"__metadata__": {"n_head": "2"}}, b""
    for name, shape in shapes.items():
        n = 1
        for d in shape:
            n *= d
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + 4 * n]}
        data += floats(n, rnd)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rnd = random.Random(7)
    with open(os.path.join(out, "llama_tiny.llama2c.bin"), "wb") as f:
        f.write(llama2c(rnd))
    with open(os.path.join(out, "gpt2_tiny.safetensors"), "wb") as f:
        f.write(gpt2_safetensors(rnd))


if __name__ == "__main__":
    main()
