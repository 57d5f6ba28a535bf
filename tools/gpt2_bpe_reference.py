#!/usr/bin/env python3
"""Independent reference for the GPT-2 tokenizer tests: encodes a fixed list of strings with the GPT-2
pre-tokenization regex (run by the third-party `regex` module: Debian python3-regex or pip regex) and the textbook BPE loop
(rescan for the lowest-ranked pair, merge every occurrence, repeat), then writes the ids as JSON.

Usage: python3 tools/gpt2_bpe_reference.py SHARED/testdata/llm/gpt2 > tests/data/gpt2_bpe_cases.json

Only characters whose letter/number/space class is the same in `regex` (its own Unicode version) and
in Python's unicodedata (the version our C++ tables come from) are used, so that the expectations do not
depend on the Unicode version.
"""
import json
import os
import sys
import unicodedata

import regex

PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")

CASES = [
    "Hello world",
    "Hello, world! How's it going? I'm fine; we'll see, they've said, you're right, she'd know.",
    "The quick brown fox jumps over the lazy dog 1234567890 times.",
    "  leading spaces, trailing spaces   ",
    "tabs\tand\nnewlines\r\n\r\nand   multiple    spaces\n\n\n",
    "x = f(a, b) + g[c] * 3.14159 - 2e10; // comment",
    "def main():\n    print('hi')\n    return 0\n",
    "<|endoftext|> is not special here",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber stra\u00dfe",
    "\u4e2d\u6587\u5b57\u7b26\u548c\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u05e2\u05d1\u05e8\u05d9\u05ea \u0939\u093f\u0928\u094d\u0926\u0940",
    "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22 \ud55c\uad6d\uc5b4 \u0440\u0443\u0441\u0441\u043a\u0438\u0439",
    "emoji \U0001F600\U0001F680 and \U0001F468\u200d\U0001F469\u200d\U0001F467 family \u2764\ufe0f",
    "numbers \u0661\u0662\u0663 \u2460\u2461 \u00bd \u2167 ok",
    "nbsp\u00a0here and\u3000ideographic\u2003em space",
    "'s 's's ''s 'S 'll've",
    "A\u0301 combining e\u0301 marks",
    "mixed123abc 456def ghi789",
    "!!!??? ... --- ***",
    "don't DON'T Don't",
    "   \n   x",
]


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def bpe(word, ranks):
    parts = list(word)
    while len(parts) > 1:
        pairs = {(parts[i], parts[i + 1]) for i in range(len(parts) - 1)}
        best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if best not in ranks:
            break
        merged, i = [], 0
        while i < len(parts):
            if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
                merged.append(parts[i] + parts[i + 1])
                i += 2
            else:
                merged.append(parts[i])
                i += 1
        parts = merged
    return parts


def same_class(ch):
    def cls_ud(c):
        cat = unicodedata.category(c)
        if c.isspace() and not "\x1c" <= c <= "\x1f":
            return "s"
        return cat[0] if cat[0] in "LN" else "o"

    def cls_re(c):
        if regex.match(r"\s", c):
            return "s"
        if regex.match(r"\p{L}", c):
            return "L"
        if regex.match(r"\p{N}", c):
            return "N"
        return "o"

    return cls_ud(ch) == cls_re(ch)


def main():
    folder = sys.argv[1]
    with open(os.path.join(folder, "encoder.json"), encoding="utf-8") as f:
        encoder = json.load(f)
    with open(os.path.join(folder, "vocab.bpe"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = [tuple(line.split(" ")) for line in lines[1:] if line]
    ranks = {m: i for i, m in enumerate(merges)}
    b2u = bytes_to_unicode()
    out = []
    for text in CASES:
        for ch in text:
            assert same_class(ch), f"U+{ord(ch):04X} is classified differently by regex and unicodedata"
        ids = []
        for piece in PATTERN.findall(text):
            word = "".join(b2u[b] for b in piece.encode("utf-8"))
            ids.extend(encoder[t] for t in bpe(word, ranks))
        out.append({"text": text, "ids": ids})
    doc = {
        "generator": "tools/gpt2_bpe_reference.py (python3-regex + textbook BPE); vocabulary: gpt2/encoder.json, vocab.bpe",
        "cases": out,
    }
    json.dump(doc, sys.stdout, ensure_ascii=True, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
