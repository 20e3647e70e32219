"""The regression gate of `rag eval`: a drop beyond the baseline's interval, a floor not met, and
the metadata a results file carries so a later run can be compared with it."""

from __future__ import annotations

from datetime import UTC, datetime

from eval.harness import ANSWER_KINDS, metric_names, stat
from rag.settings import Settings

# Metrics where lower is better; everything else is higher-is-better.
LOWER_IS_BETTER = frozenset(
    {
        "false_refusal_rate",
        "duplicate_sentences",
        "fragments",
        *(f"false_refusal_rate[{k}]" for k in ANSWER_KINDS),
    }
)
NOT_GATED = frozenset({"answer_words"})  # reported, but neither longer nor shorter is a regression


def compare(current: dict, baseline: dict) -> tuple[list[str], list[str]]:
    """Lines of per-metric deltas, and the regressions among them.

    A metric regresses when its new mean falls outside the baseline's 95 % interval on the bad
    side: the drop is larger than sampling noise explains.
    """
    lines, regressions = [], []
    for mode, block in baseline.get("modes", {}).items():
        for metric in metric_names(block):
            base, now = stat(block, metric), stat(current.get("modes", {}).get(mode, {}), metric)
            if base is None or now is None or metric in NOT_GATED:
                continue
            worse = now.mean > base.high if metric in LOWER_IS_BETTER else now.mean < base.low
            line = f"{mode:7} {metric:20} {base.mean:.3f} -> {now.mean:.3f} ({now.mean - base.mean:+.3f})"
            lines.append(line + ("  REGRESSION" if worse else ""))
            if worse:
                regressions.append(line)
    return lines, regressions


def floors(results: dict, mode: str, rules: list[str]) -> list[str]:
    """`METRIC=VALUE` rules the mode's results fall under, as lines saying which and by how much."""
    failed = []
    for rule in rules:
        metric, _, floor = rule.partition("=")
        value = results["modes"][mode].get(metric)
        if value is None or value < float(floor):
            failed.append(f"{metric} = {value} is under {floor}")
    return failed


def metadata(settings: Settings, **run: object) -> dict:
    """What produced a results file: the run's options, the settings (no secrets) and the time."""
    return run | {
        "settings": settings.public(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
