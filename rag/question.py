"""What a question asks, read from its words alone: its content terms, its kind, the kind of
answer it expects, and whether it leans on the conversation before it.

Every later step reads this one analysis: answerability (are the asked-for terms and the
expected kind of answer in the passages?), the extractive composer (how to shape the answer)
and follow-up handling (carry the earlier topic only when the question needs it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Literal

from rag.offline import tiktoken_cache_dir

# factoid: who / what / which / when / where / how many / how much: one fact, one sentence.
# explain: why, how, "what does X say about Y": a few sentences that cover the point.
# summary: summarize / overview / main points / what is X about: the gist of a document.
QuestionKind = Literal["factoid", "explain", "summary"]
Expected = Literal["number", "date", "name"]

WORD = re.compile(r"\w+", re.UNICODE)
_NUMBER = re.compile(r"\d")

# Words that frame a question ("summarize the post", "what does the author say") rather than
# name its topic: they are not evidence that a passage answers it.
FRAMING = frozenset(
    [
        "summarize",
        "summarise",
        "summary",
        "summarizing",
        "overview",
        "overall",
        "main",
        "point",
        "points",
        "key",
        "gist",
        "brief",
        "briefly",
        "short",
        "nutshell",
        "takeaway",
        "takeaways",
        "tl",
        "dr",
        "bottom",
        "line",
        "sum",
        "essence",
        "theme",
        "themes",
        "message",
        "idea",
        "ideas",
        "post",
        "posts",
        "article",
        "articles",
        "piece",
        "pieces",
        "document",
        "documents",
        "doc",
        "docs",
        "text",
        "texts",
        "thread",
        "threads",
        "page",
        "pages",
        "blog",
        "author",
        "authors",
        "writer",
        "writers",
        "commenter",
        "commenters",
        "comment",
        "comments",
        "reader",
        "readers",
        "discussion",
        "discussions",
        "passage",
        "passages",
        "source",
        "sources",
        "say",
        "says",
        "said",
        "saying",
        "tell",
        "tells",
        "told",
        "describe",
        "describes",
        "described",
        "explain",
        "explains",
        "explained",
        "mention",
        "mentions",
        "mentioned",
        "discuss",
        "discusses",
        "discussed",
        "argue",
        "argues",
        "argued",
        "argument",
        "arguments",
        "claim",
        "claims",
        "think",
        "thinks",
        "thought",
        "believe",
        "believes",
        "write",
        "writes",
        "wrote",
        "written",
        "suggest",
        "suggests",
        "according",
        "per",
        "regarding",
        "give",
        "please",
        "kind",
        "sort",
        "anything",
        "something",
        "thing",
        "things",
    ]
)

_SUMMARY = re.compile(
    r"\b(summar\w*|overview|gist|tl;?\s?dr|in a nutshell|bottom line|main (point|points|idea|ideas|"
    r"argument|message|takeaway|takeaways|theme|themes|thesis)|key (point|points|takeaway|takeaways|ideas)|"
    r"overall (point|message|argument)|what (is|are|was) (the|this|that) \w+( \w+)? about|"
    r"what (is|was) (it|this) about|briefly)\b",
    re.I,
)
_EXPLAIN = re.compile(
    r"^\s*(why|how)\b(?!\s+(many|much|long|old|far|big|large|often|soon|tall|high|deep|fast|wide)\b)"
    r"|\b(what|how) (do|does|did)\b.*\b(say|says|think|argue|claim|suggest|write|believe|mean|describe|"
    r"see|view|feel)\b|\baccording to\b|\b(explain|describe|tell me about)\b|\bwhat about\b|\bwhat role\b",
    re.I,
)
_EXPECTS: tuple[tuple[Expected, re.Pattern[str]], ...] = (
    ("date", re.compile(r"\b(when|what (year|date|month|day|decade|century)|which (year|date|month|"
                        r"day|decade|century)|since when|how long ago)\b", re.I)),
    ("number", re.compile(r"\bhow (many|much|long|old|far|big|large|often|tall|high|deep|fast|wide)\b"
                          r"|\bwhat (percentage|percent|proportion|share|fraction|number|amount|price|"
                          r"cost|size|capacity|rate|value|figure)\b", re.I)),
    ("name", re.compile(r"\b(who|whom|whose|where)\b|\b(which|what) (city|country|countries|company|"
                        r"companies|firm|firms|state|province|region|person|people|minister|organi[sz]ation|"
                        r"university|town|nation|nations|continent|brand|supplier|suppliers)\b", re.I)),
)  # fmt: skip
NEGATION = re.compile(r"\b(not|never|no|none|nor|cannot|without)\b|n't\b", re.I)
_LEANS_ON_CONTEXT = re.compile(
    r"^\s*(and|also|but|so|then|what about|how about|what else|anything else)\b"
    r"|\b(it|its|they|them|their|theirs|this|these|those|he|she|him|her|his|hers|there|such)\b",
    re.I,
)


@cache
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")  # the stemmer BM25 indexes with, so stems match its vocabulary


def stem(word: str) -> str:
    return _stemmer().stemWord(word)


def stems(text: str) -> set[str]:
    """Stemmed words of `text` other than stopwords: what lexical overlap is measured on."""
    stop = stopwords()
    return {stem(w) for w in WORD.findall(text.lower()) if w not in stop}


@cache
def stopwords() -> frozenset[str]:
    """NLTK's English list (179 words), shipped inside llama-index-core."""
    path = tiktoken_cache_dir().parent / "nltk_cache" / "corpora" / "stopwords" / "english"
    return frozenset(path.read_text(encoding="utf-8").split())


# "how many", "which city", "what year": the words that name the kind of answer, not its topic
# (a passage that answers "which city" names the city, not the word "city").
_KIND_NOUNS = (
    "year|date|month|day|decade|century|city|country|countries|company|companies|firm|state|province|"
    "region|person|people|town|nation|percentage|percent|proportion|number|amount"
)
_ANSWER_KIND = re.compile(
    r"\bhow (many|much|long|old|far|big|large|often|tall|high|deep|fast|wide|soon)\b"
    rf"|(?<=which )({_KIND_NOUNS})\b|(?<=what )({_KIND_NOUNS})\b",
    re.I,
)


def content_words(text: str) -> list[str]:
    """Lower-case words that are neither stopwords nor framing words, in order, each once."""
    stop = stopwords()
    seen: dict[str, None] = {}
    for word in WORD.findall(_ANSWER_KIND.sub(" ", text.lower())):
        if word not in stop and word not in FRAMING and word != "_":
            seen.setdefault(word)
    return list(seen)


def names(text: str) -> list[str]:
    """Numbers, years and capitalised names in the question (lower-cased), sentence starts excepted."""
    found: dict[str, None] = {}
    for i, match in enumerate(re.finditer(r"[\w'’-]+", text)):
        word = match.group().strip("'’-")
        if not word:
            continue
        at_start = i == 0 or text[: match.start()].rstrip().endswith((".", "?", "!", ":"))
        if _NUMBER.search(word) or (word[0].isupper() and not at_start and word.lower() not in stopwords()):
            found.setdefault(word.lower())
    return list(found)


@dataclass(frozen=True)
class Question:
    text: str
    kind: QuestionKind
    expects: Expected | None  # the kind of answer a factoid asks for, when its wording says
    terms: tuple[str, ...]  # content words: what a passage must contain to answer it
    names: tuple[str, ...]  # numbers, years and capitalised names the answer must be about
    negated: bool
    leans_on_context: bool  # pronouns, "and what about ...", or no topic of its own


def analyse(text: str) -> Question:
    terms = tuple(content_words(text))
    kind: QuestionKind = (
        "summary" if _SUMMARY.search(text) else "explain" if _EXPLAIN.search(text) else "factoid"
    )
    expects = next((name for name, pattern in _EXPECTS if pattern.search(text)), None)
    return Question(
        text=text,
        kind=kind,
        expects=expects if kind == "factoid" else None,
        terms=terms,
        names=tuple(names(text)),
        negated=bool(NEGATION.search(text)),
        leans_on_context=bool(_LEANS_ON_CONTEXT.search(text)) or len(terms) < 2,
    )


def question_problem(text: str, max_chars: int) -> str | None:
    """Why a question cannot be asked, in a few words, or None: the one rule the API and the UI
    both apply (RAG_MAX_QUESTION_CHARS)."""
    if not text.strip():
        return "the question is empty"
    if len(text) > max_chars:
        return f"the question is {len(text)} characters long; the limit is {max_chars}"
    return None
