"""Scores of a check-in and what they say over a course; pure functions, no I/O.

Totals and severity bands as published; caseness (PHQ-9 >= 10, GAD-7 >= 8), reliable change
(6 on PHQ-9, 4 on GAD-7) and recovery as the NHS Talking Therapies manual defines them and
docs/http-contract.md states:
- reliable improvement: a reliable fall on at least one measure and no reliable rise on the other;
- reliable deterioration: a reliable rise on at least one and no reliable fall on the other;
- recovery: the baseline was a case and the latest is below both thresholds (True), the
  baseline was a case and the latest is not (False), otherwise (no case, no latest) None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.progress.questionnaires import GAD7, PHQ9, SELF_HARM_ITEM, Questionnaire

CASENESS = {"phq9": 10, "gad7": 8}
RELIABLE_CHANGE = {"phq9": 6, "gad7": 4}
MEASURES = ("phq9", "gad7")


class InvalidAnswers(ValueError):
    """Answers that are not one whole number 0-3 per item."""


def validate(questionnaire: Questionnaire, answers: Sequence[int]) -> list[int]:
    values = list(answers)
    if len(values) != len(questionnaire.items):
        raise InvalidAnswers(f"{questionnaire.id} needs {len(questionnaire.items)} answers")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3:
            raise InvalidAnswers(f"each {questionnaire.id} answer is a whole number 0 to 3")
    return values


def severity(questionnaire: Questionnaire, total: int) -> str:
    for band in questionnaire.bands:
        if band.min <= total <= band.max:
            return band.label
    raise InvalidAnswers(f"{total} is outside {questionnaire.id}'s range")


@dataclass(frozen=True)
class Score:
    total: int
    severity: str

    def as_dict(self) -> dict[str, object]:
        return {"total": self.total, "severity": self.severity}


@dataclass(frozen=True)
class CheckInScores:
    phq9: Score
    gad7: Score
    risk: bool

    def totals(self) -> dict[str, int]:
        return {"phq9": self.phq9.total, "gad7": self.gad7.total}


def score(questionnaire: Questionnaire, answers: Sequence[int]) -> Score:
    total = sum(validate(questionnaire, answers))
    return Score(total, severity(questionnaire, total))


def score_check_in(phq9: Sequence[int], gad7: Sequence[int]) -> CheckInScores:
    """Both scores, and the risk flag: PHQ-9 item 9 above 0, whatever the total."""
    return CheckInScores(score(PHQ9, phq9), score(GAD7, gad7),
                         risk=validate(PHQ9, phq9)[SELF_HARM_ITEM] > 0)


def is_case(totals: dict[str, int]) -> bool:
    return any(totals[m] >= CASENESS[m] for m in MEASURES)


def _changes(baseline: dict[str, int], latest: dict[str, int]) -> tuple[set[str], set[str]]:
    """(measures with a reliable fall, measures with a reliable rise)."""
    falls = {m for m in MEASURES if baseline[m] - latest[m] >= RELIABLE_CHANGE[m]}
    rises = {m for m in MEASURES if latest[m] - baseline[m] >= RELIABLE_CHANGE[m]}
    return falls, rises


def reliable_improvement(baseline: dict[str, int] | None,
                         latest: dict[str, int] | None) -> bool | None:
    if baseline is None or latest is None:
        return None
    falls, rises = _changes(baseline, latest)
    return bool(falls) and not rises


def reliable_deterioration(baseline: dict[str, int] | None,
                           latest: dict[str, int] | None) -> bool | None:
    """The mirror image: reliable improvement read backwards in time."""
    return reliable_improvement(latest, baseline)


def recovery(baseline: dict[str, int] | None, latest: dict[str, int] | None) -> bool | None:
    if baseline is None or latest is None or not is_case(baseline):
        return None
    return not is_case(latest)


@dataclass(frozen=True)
class Outcome:
    baseline: dict[str, int] | None
    latest: dict[str, int] | None
    reliable_improvement: bool | None
    reliable_deterioration: bool | None
    recovery: bool | None


def outcome(totals_in_order: Sequence[dict[str, int]]) -> Outcome:
    """What a course's check-ins (oldest first) say: baseline, latest (null before two exist)
    and the reliable-change and recovery verdicts between them."""
    baseline = dict(totals_in_order[0]) if totals_in_order else None
    latest = dict(totals_in_order[-1]) if len(totals_in_order) >= 2 else None
    return Outcome(baseline, latest, reliable_improvement(baseline, latest),
                   reliable_deterioration(baseline, latest), recovery(baseline, latest))
