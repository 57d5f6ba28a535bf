#!/usr/bin/python3
"""PyTorch eager baseline for `cml bench model`: the same GPT-2 124M shape (vocab 50257, 768 wide, 12 layers,
12 heads, 3072 MLP, tied head) with random weights, the same thread count, a 128-token prefill (logits of
the last token) and greedy decode with a key/value cache. Plain torch ops (no transformers package),
inference mode, pre-allocated KV cache: the fastest eager formulation we know, so the comparison is fair
to PyTorch.

Usage: /usr/bin/python3 tools/bench_torch_gpt2.py [--threads 2] [--decode 64] [--dtype f32|bf16] [--quick]
Prints one JSON object.
"""
import argparse
import json
import math
import statistics
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--decode", type=int, default=64)
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--quick", action="store_true", help="2 layers, vocab 5000")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    dt = torch.float32 if a.dtype == "f32" else torch.bfloat16
    V, D, L, H, F, C = (5000 if a.quick else 50257), 768, (2 if a.quick else 12), 12, 3072, 1024
    hd = D // H

    def rnd(*shape, std=0.02):
        return (torch.randn(*shape) * std).to(dt)

    wte, wpe = rnd(V, D), rnd(C, D, std=0.01)
    layers = []
    for _ in range(L):
        layers.append(dict(
            ln1=(torch.ones(D, dtype=dt), torch.zeros(D, dtype=dt)),
            attn_w=rnd(D, 3 * D), attn_b=rnd(3 * D),   # Conv1D layout [in, out], as GPT-2 stores it
            proj_w=rnd(D, D), proj_b=rnd(D),
            ln2=(torch.ones(D, dtype=dt), torch.zeros(D, dtype=dt)),
            fc_w=rnd(D, F), fc_b=rnd(F),
            mproj_w=rnd(F, D), mproj_b=rnd(D)))
    lnf = (torch.ones(D, dtype=dt), torch.zeros(D, dtype=dt))
    max_ctx = a.prompt + a.decode + 8
    weight_bytes = sum(t.numel() * t.element_size() for t in [wte, wpe] + [v for l in layers for v in l.values()
                                                                          if isinstance(v, torch.Tensor)])

    def forward(tokens, pos0, cache):
        T = tokens.shape[0]
        x = wte[tokens] + wpe[pos0:pos0 + T]
        mask = None
        if T > 1:
            mask = torch.full((T, pos0 + T), float("-inf"), dtype=dt).triu(pos0 + 1)
        for i, l in enumerate(layers):
            h = torch.nn.functional.layer_norm(x, (D,), *l["ln1"], 1e-5)
            qkv = torch.addmm(l["attn_b"], h, l["attn_w"])
            q, k, v = qkv.split(D, dim=1)
            kc, vc = cache[i]
            kc[pos0:pos0 + T] = k
            vc[pos0:pos0 + T] = v
            q = q.view(T, H, hd).transpose(0, 1)
            k = kc[:pos0 + T].view(-1, H, hd).transpose(0, 1)
            v = vc[:pos0 + T].view(-1, H, hd).transpose(0, 1)
            att = (q @ k.transpose(1, 2)) / math.sqrt(hd)
            if mask is not None:
                att = att + mask
            att = torch.softmax(att, dim=-1)
            y = (att @ v).transpose(0, 1).reshape(T, D)
            x = x + torch.addmm(l["proj_b"], y, l["proj_w"])
            h = torch.nn.functional.layer_norm(x, (D,), *l["ln2"], 1e-5)
            h = torch.nn.functional.gelu(torch.addmm(l["fc_b"], h, l["fc_w"]), approximate="tanh")
            x = x + torch.addmm(l["mproj_b"], h, l["mproj_w"])
        x = torch.nn.functional.layer_norm(x[-1:], (D,), *lnf, 1e-5)
        return x @ wte.t()

    with torch.inference_mode():
        prompt = torch.tensor([(i * 7919 + 13) % V for i in range(a.prompt)])
        best = float("inf")
        for _ in range(1 if a.quick else 3):
            cache = [(torch.zeros(max_ctx, D, dtype=dt), torch.zeros(max_ctx, D, dtype=dt)) for _ in range(L)]
            t0 = time.perf_counter()
            logits = forward(prompt, 0, cache)
            best = min(best, time.perf_counter() - t0)
        pos, times = a.prompt, []
        for i in range(a.decode + 2):
            tok = logits.argmax(dim=-1)
            t0 = time.perf_counter()
            logits = forward(tok, pos, cache)
            dt_s = time.perf_counter() - t0
            if i >= 2:
                times.append(dt_s)
            pos += 1
    print(json.dumps({
        "framework": f"pytorch {torch.__version__} eager",
        "dtype": a.dtype, "threads": torch.get_num_threads(), "prompt_tokens": a.prompt,
        "prefill_tok_s": a.prompt / best, "prefill_ms": best * 1e3,
        "decode_ms_per_token": statistics.mean(times) * 1e3,
        "decode_ms_per_token_median": statistics.median(times) * 1e3,
        "decode_ms_per_token_min": min(times) * 1e3,
        "weight_bytes": weight_bytes,
    }))


if __name__ == "__main__":
    main()
