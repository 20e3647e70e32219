"""Section headings in the cleaned text, and the section path in effect at any offset.

Loaders report headings as (level, text) in document order: PDF heading-like lines, DOCX heading
styles, HTML h1-h3. Markdown headings are read off the text's own `#` lines. Cleaning only drops
whole lines, so each heading is found again as a whole line of the cleaned text, in order.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

SEPARATOR = " › "
_MARKDOWN = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)


@dataclass(frozen=True)
class Heading:
    level: int  # 1 is the top
    text: str


@dataclass(frozen=True)
class Sections:
    """Headings located in one cleaned text: `path(offset)` names the section holding an offset."""

    offsets: list[int]
    paths: list[str]

    def path(self, offset: int) -> str:
        i = bisect.bisect_right(self.offsets, offset) - 1
        return self.paths[i] if i >= 0 else ""

    def starts_within(self, start: int, end: int) -> list[tuple[int, str]]:
        """(offset, path) of each section that begins inside `text[start:end]`, after its start."""
        lo, hi = bisect.bisect_right(self.offsets, start), bisect.bisect_left(self.offsets, end)
        return list(zip(self.offsets[lo:hi], self.paths[lo:hi], strict=True))


def markdown_headings(text: str) -> list[Heading]:
    return [Heading(len(m.group(1)), m.group(2)) for m in _MARKDOWN.finditer(text)]


def locate(text: str, headings: list[Heading]) -> Sections:
    """Find each heading as a whole line of `text`, in order; one that cleaning dropped is skipped."""
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    lines = text.split("\n")
    offsets: list[int] = []
    paths: list[str] = []
    stack: list[Heading] = []
    cursor = 0
    for heading in headings:
        wanted = heading.text.strip()
        for i in range(cursor, len(lines)):
            if lines[i].strip().lstrip("#").strip() == wanted:
                cursor = i + 1
                while stack and stack[-1].level >= heading.level:
                    stack.pop()
                stack.append(heading)
                offsets.append(line_starts[i])
                paths.append(SEPARATOR.join(h.text.strip() for h in stack))
                break
    return Sections(offsets, paths)
