"""Clean extracted text before chunking: normalise, drop page junk, drop repeated paragraphs.

The rules are deliberately conservative: they remove whole lines only, and only lines that
match one of the named patterns below. Prose is never rewritten, so a quote taken from the
cleaned text is a quote of the document.

Junk rules (each line is tested after stripping leading bullets such as "•", "-", "*"):

| rule | drops | example |
|---|---|---|
| view_original | "View Original" links, also glued to "Reply0" | `View OriginalReply0` |
| widget | a lone share/comment widget word, optionally with a count | `Repost`, `Like 12` |
| counter | a line that is only a number or a character counter | `5`, `0/400` |
| relative_time | a comment timestamp | `· 5h ago` |
| comment_author | a one-word line directly above a timestamp line | `ChainPoetvip` |
| language_menu | a run of 3+ lines that are each a language name | `English`, `简体中文`, ... |
| disclaimer | a line with 2+ disclaimer phrases | `... for information purposes only ... See Disclaimer` |
| app_promo | app download and QR-code prompts | `Scan to download Gate App`, `qrCode` |

Repeated paragraphs: a line whose normalised form (casefolded, letters and digits only) was
already seen in the same document is dropped, when that form is at least
`MIN_DEDUP_CHARS` long; short lines ("Yes.") can legitimately repeat.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

MIN_DEDUP_CHARS = 40

_BULLET = re.compile(r"^[\s•·\-*–—]+")
_ZERO_WIDTH = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff]")
# C0/C1 controls except tab and newline: they come from broken extractions, never from prose.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[ \t\f\v]+")
_NOT_ALNUM = re.compile(r"[\W_]+")

_RULES: dict[str, re.Pattern[str]] = {
    "view_original": re.compile(r"^view original(\s*reply\s*\d*)?$", re.I),
    "widget": re.compile(
        r"^(reward|repost|share|comments?|reply|likes?|follow|subscribe|tweet|print|email)"
        r"\s*\d*$",
        re.I,
    ),
    "counter": re.compile(r"^\d+(/\d+)?$"),
    "relative_time": re.compile(
        r"^\d+\s*(s|m|h|d|w|mo|y|secs?|mins?|hours?|days?|weeks?|months?|years?)\s+ago$", re.I
    ),
    "app_promo": re.compile(r"^(scan to download\b.*\bapp|qr ?code)$", re.I),
}

_DISCLAIMER_MARKERS = [
    re.compile(p, re.I)
    for p in (
        r"\bsee disclaimer\b",
        r"for information(al)? purposes only",
        r"not (be )?(considered|construed) as (an )?endorsement",
        r"(financial|investment|professional) advice",
        r"not representations?(/| or )warrant",
        r"third[- ]party content",
    )
]

LANGUAGE_NAMES = frozenset(
    name.casefold()
    for name in (
        "English",
        "简体中文",
        "繁體中文",
        "中文",
        "Tiếng Việt",
        "Español",
        "Русский",
        "Français",
        "Français (Afrique)",
        "Deutsch",
        "Italiano",
        "Português",
        "Português (Portugal)",
        "Português (Brasil)",
        "Bahasa Indonesia",
        "日本語",
        "한국어",
        "العربية",
        "بالعربية",
        "Українська",
        "Türkçe",
        "Polski",
        "Nederlands",
        "हिन्दी",
        "ไทย",
        "Filipino",
    )
)
_LANGUAGE_RUN = 3
_MAX_PASSES = 5  # each pass only removes lines, so this is reached only on adversarial input


@dataclass(frozen=True)
class CleanResult:
    text: str
    dropped: dict[str, int] = field(default_factory=dict)  # rule name (or "duplicate") -> lines
    page_starts: list[int] = field(default_factory=lambda: [0])  # where each page begins in `text`


def normalise(raw: str) -> str:
    """Unicode NFKC, unified newlines, no control or zero-width characters, single spaces."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    # Strip invisible characters before NFKC: removing one afterwards can leave a base letter next
    # to a combining mark that NFKC would compose, so a second pass would change the text again.
    text = unicodedata.normalize("NFKC", _CONTROL.sub("", _ZERO_WIDTH.sub("", text)))
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n"))


def _bare(line: str) -> str:
    return _BULLET.sub("", line).strip()


def _junk_rule(lines: list[str], i: int) -> str | None:
    """Name of the junk rule line i matches, or None."""
    bare = _bare(lines[i])
    for name, pattern in _RULES.items():
        if pattern.match(bare):
            return name
    if sum(1 for m in _DISCLAIMER_MARKERS if m.search(bare)) >= 2:
        return "disclaimer"
    if (
        " " not in bare
        and len(bare) <= 40
        and i + 1 < len(lines)
        and _RULES["relative_time"].match(_bare(lines[i + 1]))
    ):
        return "comment_author"
    return None


def _language_menu_lines(lines: list[str]) -> set[int]:
    found: set[int] = set()
    run: list[int] = []
    for i, line in enumerate([*lines, ""]):
        if _bare(line).casefold() in LANGUAGE_NAMES:
            run.append(i)
            continue
        if len(run) >= _LANGUAGE_RUN:
            found.update(run)
        run = []
    return found


def dedup_key(line: str) -> str:
    """Letters and digits only, casefolded: near-exact repeats share a key."""
    return _NOT_ALNUM.sub("", line.casefold())


def _clean_once(text: str, dropped: Counter[str], seen: set[str]) -> str:
    lines = text.split("\n")
    menu = _language_menu_lines(lines)
    kept: list[str] = []
    for i, line in enumerate(lines):
        if not line:
            kept.append("")
            continue
        rule = "language_menu" if i in menu else _junk_rule(lines, i)
        if rule is None:
            key = dedup_key(line)
            if len(key) >= MIN_DEDUP_CHARS:
                if key in seen:
                    rule = "duplicate"
                seen.add(key)
        if rule:
            dropped[rule] += 1
        else:
            kept.append(line)
    # Blank lines mark paragraph breaks; keep at most one between blocks.
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def clean_text(raw: str) -> CleanResult:
    """Clean a document that has no pages (everything but PDF)."""
    return clean_pages([raw], [])


def clean_pages(pages: list[str], joins: list[str]) -> CleanResult:
    """Normalise, then drop junk and repeats until nothing more drops; join the pages.

    One pass can bring junk together (two short language runs joined by a dropped counter form
    a menu), so passes repeat until the text is stable; cleaning cleaned text changes nothing.
    Repeats are found across the whole document. `joins[i]` goes between page i and i + 1 (a
    paragraph break, or a space or nothing where a paragraph runs on); `page_starts` records
    where each page's text begins in the joined text.
    """
    dropped: Counter[str] = Counter()
    texts = [normalise(page) for page in pages]
    for _ in range(_MAX_PASSES):
        seen: set[str] = set()
        cleaned = [_clean_once(text, dropped, seen) for text in texts]
        if cleaned == texts:
            break
        texts = cleaned
    text = ""
    starts = []
    for i, page in enumerate(texts):
        if text and page:
            text += joins[i - 1] if i - 1 < len(joins) else "\n\n"
        starts.append(len(text))
        text += page
    return CleanResult(text=text, dropped=dict(dropped), page_starts=starts)
