"""A realistic corpus of any size for benchmarks: the shipped documents, replicated with variation.

The seed texts are the 11 SQuAD Wikipedia articles and the two sample documents that ship in
`eval/cases/`. Copy k of a document keeps its paragraphs but reorders them (seeded), renames the
document and shifts every number by k, so copies are distinct texts that chunk, embed and score
differently while reading like the originals.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from eval.cases import CASES

SEED_FOLDERS = (CASES / "squad2-dev" / "docs", CASES / "docs")
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class Generated:
    folder: Path
    files: int
    approx_chunks: int


def seed_documents() -> list[tuple[str, list[str]]]:
    """(name, paragraphs) of every shipped document."""
    docs = []
    for folder in SEED_FOLDERS:
        for path in sorted(folder.glob("*.txt")):
            paragraphs = [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
            docs.append((path.stem, paragraphs))
    return docs


def variant(paragraphs: list[str], copy: int, rng: random.Random) -> str:
    if copy == 0:
        return "\n\n".join(paragraphs)
    shuffled = list(paragraphs)
    rng.shuffle(shuffled)
    return "\n\n".join(_NUMBER.sub(lambda m: str(int(m.group()) + copy), p) for p in shuffled)


def generate(folder: Path, chunks: int, chunks_per_document: dict[str, int], seed: int = 7) -> Generated:
    """Write copies of the seed documents into `folder` until about `chunks` chunks.

    `chunks_per_document` says how many chunks each seed document makes at the product's
    settings (the caller chunks them once); copies make about as many.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    docs = seed_documents()
    total, files, copy = 0, 0, 0
    while total < chunks:
        for name, paragraphs in docs:
            if total >= chunks:
                break
            (folder / f"{name}__{copy:04d}.txt").write_text(variant(paragraphs, copy, rng), encoding="utf-8")
            total += chunks_per_document[name]
            files += 1
        copy += 1
    return Generated(folder, files, total)
