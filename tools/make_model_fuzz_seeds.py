#!/usr/bin/env python3
"""Writes the small seed corpora of the model module's fuzz targets (fuzz/corpus/{gguf,safetensors,llama2c,
tokenizer_bin,gpt2_text}/). Synthetic files only: valid, minimal instances of each format.

Usage: python3 tools/make_model_fuzz_seeds.py fuzz/corpus
"""
import json
import os
import struct
import sys


def gguf(version, kvs, tensors, alignment=32):
    """kvs: list of (key, type_id, payload bytes); tensors: list of (name, ne list, ggml type, data bytes)."""
    w = "I" if version == 1 else "Q"

    def s(b):
        return struct.pack("<" + w, len(b)) + b

    out = b"GGUF" + struct.pack("<I", version) + struct.pack("<" + w + w, len(tensors), len(kvs))
    for key, t, payload in kvs:
        out += s(key.encode()) + struct.pack("<I", t) + payload
    data, infos = b"", b""
    for name, ne, t, blob in tensors:
        data += b"\0" * ((-len(data)) % alignment)
        infos += s(name.encode()) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<" + w, d) for d in ne)
        infos += struct.pack("<IQ", t, len(data))
        data += blob
    out += infos
    out += b"\0" * ((-len(out)) % alignment)
    return out + data


def gguf_string(version, text):
    w = "I" if version == 1 else "Q"
    return struct.pack("<" + w, len(text.encode())) + text.encode()


def gguf_array(version, elem_type, payloads):
    w = "I" if version == 1 else "Q"
    return struct.pack("<I", elem_type) + struct.pack("<" + w, len(payloads)) + b"".join(payloads)


def llama_vocab_kvs(version):
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + ["\u2581", "a", "\u2581a", "b", "ab"]
    scores = [0.0] * 259 + [-1.0, -2.0, 3.0, -3.0, 1.0]
    types = [2, 3, 3] + [6] * 256 + [1] * 5
    return [
        ("tokenizer.ggml.model", 8, gguf_string(version, "llama")),
        ("tokenizer.ggml.tokens", 9, gguf_array(version, 8, [gguf_string(version, t) for t in tokens])),
        ("tokenizer.ggml.scores", 9, gguf_array(version, 6, [struct.pack("<f", x) for x in scores])),
        ("tokenizer.ggml.token_type", 9, gguf_array(version, 5, [struct.pack("<i", x) for x in types])),
        ("tokenizer.ggml.bos_token_id", 4, struct.pack("<I", 1)),
        ("tokenizer.ggml.eos_token_id", 4, struct.pack("<I", 2)),
    ]


def floats(n, start=0.0):
    return b"".join(struct.pack("<f", start + i) for i in range(n))


def safetensors(tensors, metadata=None):
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, blob in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    h = json.dumps(header).encode()
    h += b" " * ((-len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + data


def llama2c(dim, hidden, layers, heads, kv_heads, vocab, seq):
    head = dim // heads
    kv_dim = head * kv_heads
    n = abs(vocab) * dim + layers * (2 * dim + 2 * dim * dim + 2 * kv_dim * dim + 3 * dim * hidden) + dim + seq * head
    if vocab < 0:
        n += abs(vocab) * dim
    return struct.pack("<7i", dim, hidden, layers, heads, kv_heads, vocab, seq) + floats(n)


def tokenizer_bin(pieces):
    out = struct.pack("<I", max(len(p) for _, p in pieces))
    for score, p in pieces:
        out += struct.pack("<fI", score, len(p)) + p
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus"

    def put(target, name, blob):
        os.makedirs(os.path.join(root, target), exist_ok=True)
        with open(os.path.join(root, target, name), "wb") as f:
            f.write(blob)

    for v in (1, 2, 3):
        kvs = [
            ("general.architecture", 8, gguf_string(v, "llama")),
            ("general.alignment", 4, struct.pack("<I", 32)),
            ("llama.attention.layer_norm_rms_epsilon", 6, struct.pack("<f", 1e-5)),
            ("flag", 7, b"\x01"),
            ("big", 10, struct.pack("<Q", 2**40)),
            ("nested", 9, struct.pack("<I", 9) + struct.pack("<" + ("I" if v == 1 else "Q"), 1) + gguf_array(v, 4, [struct.pack("<I", 7)])),
        ] + (llama_vocab_kvs(v) if v != 2 else [])
        tensors = [("token_embd.weight", [4, 3], 0, floats(12)), ("h", [2], 1, b"\x00\x3c\x00\xc0"), ("b", [2], 30, b"\x80\x3f\x00\x00")]
        put("gguf", f"tiny_v{v}.gguf", gguf(v, kvs, tensors))

    put("safetensors", "tiny.safetensors", safetensors(
        [("wte.weight", "F32", [4, 3], floats(12)), ("h.0.attn.c_attn.weight", "BF16", [3, 2], b"\x80\x3f" * 6),
         ("half", "F16", [2], b"\x00\x3c\x00\xc0"), ("tokens", "I32", [2], struct.pack("<2i", 1, 2))], {"format": "pt"}))
    put("safetensors", "empty.safetensors", safetensors([]))

    put("llama2c", "tied.bin", llama2c(8, 12, 2, 4, 2, 10, 4))
    put("llama2c", "untied.bin", llama2c(8, 12, 1, 2, 1, -6, 2))

    pieces = [(0.0, b"<unk>"), (0.0, b"\n<s>\n"), (0.0, b"\n</s>\n")] + [(0.0, b"<0x%02X>" % b) for b in range(256)]
    pieces += [(-1.0, b" "), (-2.0, b"a"), (3.0, b" a"), (-3.0, b"b"), (1.0, b"ab"), (2.0, b" ab")]
    put("tokenizer_bin", "tiny.bin", tokenizer_bin(pieces))
    put("tokenizer_bin", "no_bytes.bin", tokenizer_bin([(0.0, b"<unk>"), (0.0, b"<s>"), (0.0, b"</s>"), (1.0, b"x")]))

    texts = {
        "ascii.txt": b"Hello world! I'm here, they've gone; it's 2026.\n\n  tabs\tand   spaces  ",
        "unicode.txt": "caf\u00e9 \u4e2d\u6587 \U0001F600\U0001F468\u200d\U0001F469 \u00a0nbsp \u0661\u0662".encode(),
        "invalid.txt": b"\xff\xfe\xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82 'll 's",
    }
    for name, blob in texts.items():
        put("gpt2_text", name, blob)


if __name__ == "__main__":
    main()
