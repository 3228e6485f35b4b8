"""The banking app matches names with rapidfuzz (faster than difflib): the same generated
set must keep precision ≥ 99.5 % of auto-confirmed matches and recall ≥ 95 %, printed."""

from __future__ import annotations

from decimal import Decimal

from rapidfuzz import fuzz

from facturo.core.matching import AUTO_CONFIRM, MatchSettings, match_lines, name_similarity
from tests.unit.test_matching_quality import generate, score


def fuzzy(a: str, b: str) -> float:  # as banking.services.fuzzy_similarity (no Django here)
    return float(fuzz.token_sort_ratio(a, b, processor=None)) / 100.0 if a and b else 0.0


def test_rapidfuzz_scale_agrees_with_difflib() -> None:
    pairs = [("BOULANGERIE MARTIN", "MARTIN BOULANGERIE"), ("DUPONT", "DUPOND"),
             ("GARAGE DUPONT", "CABINET MOREAU"), ("ACME", "")]  # fmt: skip
    threshold = MatchSettings().name_similarity
    for a, b in pairs:
        assert (fuzzy(a, b) >= threshold) == (name_similarity(a, b) >= threshold), (a, b)
        if name_similarity(a, b) >= 0.6:
            assert abs(fuzzy(a, b) - name_similarity(a, b)) < 0.05, (a, b)


def test_precision_and_recall_with_rapidfuzz_names() -> None:
    invoices, cases = generate(4000, 6000, seed=11)
    settings = MatchSettings(tolerance_absolute=Decimal("5.00"), similarity=fuzzy)
    figures = score(cases, match_lines([c.line for c in cases], invoices, settings))
    print(
        f"\nrapidfuzz: precision (auto ≥{AUTO_CONFIRM}) {figures['precision']:.4f} on "
        f"{figures['auto']:.0f}; recall {figures['recall']:.4f} on {figures['matchable']:.0f}"
    )
    assert figures["precision"] >= 0.995
    assert figures["recall"] >= 0.95
