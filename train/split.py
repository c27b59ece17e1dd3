"""Chooses the quality benchmark's held-out split once; the list is then frozen in git.

    python3 train/split.py --data train/data/icons.safetensors --prompts train/quality/prompts.tsv \
        --out train/quality/heldout.txt

About 10% of icons are held out: no diffusion model and not the classifier trains on them. An icon
carrying any vocabulary word with fewer than 5 icons is never held out (such words keep all their
icons in training; the benchmark scores them against training icons, marked). Every prompt word
with 5 or more icons gets at least one held-out icon, about 10% of its icons, first; the rest of
the 10% is drawn from icons that carry no prompt word, so each prompt word keeps its share (the
default prompt, "hippo", has 5 icons: one is held out, four train). Draws are by SHA-1 of `set:name`: reproducible.
"""
import argparse
import hashlib
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from icons import IconFile, icon_key  # noqa: E402


def order(key):
    return hashlib.sha1(key.encode()).hexdigest()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--prompts", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--share", type=float, default=0.10)
    a = p.parse_args()
    data = IconFile(a.data, "cpu")
    counts = [0] * (len(data.vocab) + 1)
    for icon in data.icons:
        for w in set(icon["words"]):
            counts[w] += 1
    rare = {w for w in range(1, len(counts)) if counts[w] < 5}
    eligible = [i for i, icon in enumerate(data.icons) if not rare.intersection(icon["words"])]
    held = set()
    words = []
    with open(a.prompts) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                words.append(line.rstrip("\n").split("\t")[1])
    prompt_rows = set()
    for word in dict.fromkeys(words):
        row = data.vocab.index(word) + 1 if word in data.vocab else None
        if row is None:
            raise SystemExit(f"prompt word '{word}' is not in the vocabulary")
        prompt_rows.add(row)
        if counts[row] < 5:
            continue
        mine = sorted((i for i in eligible if row in data.icons[i]["words"]), key=lambda i: order(icon_key(data.icons[i])))
        held.update(mine[:max(1, math.ceil(a.share * counts[row]))])
    target = round(a.share * len(data.icons))
    rest = [i for i in eligible if not prompt_rows.intersection(data.icons[i]["words"])]
    for i in sorted(rest, key=lambda i: order(icon_key(data.icons[i]))):
        if len(held) >= target:
            break
        held.add(i)
    keys = sorted(icon_key(data.icons[i]) for i in held)
    with open(a.out, "w") as f:
        f.write(f"# {len(keys)} of {len(data.icons)} icons held out (train/split.py); frozen: do not regenerate.\n")
        f.write("".join(k + "\n" for k in keys))
    print(f"held out {len(keys)} of {len(data.icons)} icons; {len(eligible)} eligible, {len(rare)} rare words")


if __name__ == "__main__":
    main()
