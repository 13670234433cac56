#!/usr/bin/env python3
"""Writes the generated sample documents of files/ (the large ones).

Deterministic: running it again gives the same bytes. The small, hand-written
samples live in files/ directly. Usage: scripts/make_sample_files.py [DIR]
"""
import json
import os
import random
import sys

ITALIAN = ("la casa sulla collina guarda il mare e la sera arriva piano mentre "
           "le barche tornano al porto cariche di pesce e di racconti antichi").split()
ENGLISH = ("a quiet harbour town wakes before dawn and the bakers carry warm bread "
           "along narrow streets while gulls argue above the market square").split()


def prose(words, size, seed):
    """Sentences of random words until about size bytes."""
    rng = random.Random(seed)
    out, total = [], 0
    while total < size:
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(6, 18)))
        sentence = sentence[0].upper() + sentence[1:] + ". "
        out.append(sentence)
        total += len(sentence)
    return "".join(out).strip()


def write(folder, name, title, content):
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"titolo": title, "contenuto": content}, f, ensure_ascii=False)
        f.write("\n")
    print(f"{path}: {os.path.getsize(path)} bytes")


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "files")
    write(folder, "racconto-10k.json", "Un racconto di diecimila caratteri", prose(ITALIAN, 10_000, 10))
    write(folder, "harbour-100k.json", "The harbour, a hundred kilobytes of it", prose(ENGLISH, 100_000, 100))
    write(folder, "cronaca-300k.json", "Cronaca lunga", prose(ITALIAN, 300_000, 300))
    # Just under 1 MiB of file, so that it stays under the 1.1 MiB commit bound.
    write(folder, "grande-1mib.json", "Il documento grande (circa 1 MiB)", prose(ITALIAN + ENGLISH, 1_040_000, 1024))


if __name__ == "__main__":
    main()
