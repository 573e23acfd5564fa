"""The three phases of a DIT course: one rule, used by booking (each session's ``phase``) and by
progress (where the client is, the chart's bands).

``assessment`` is the first quarter of the sessions rounded up (1-4 of 16), ``ending`` the last
quarter rounded up (13-16 of 16), ``middle`` what lies between. A course too short to hold
both quarters apart gives the assessment its quarter first: one session is all assessment, two
are one assessment and one ending, and from three on every phase has at least one session.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ASSESSMENT, MIDDLE, ENDING = "assessment", "middle", "ending"
MAX_SESSIONS = 52


@dataclass(frozen=True)
class Phase:
    phase: str
    first: int
    last: int

    def as_dict(self) -> dict[str, object]:
        return {"phase": self.phase, "first": self.first, "last": self.last}


def phases(sessions: int) -> list[Phase]:
    """The phases of a course of ``sessions`` sessions, in order; a phase with no session is
    left out."""
    if sessions < 1:
        return []
    quarter = math.ceil(sessions / 4)
    assessment = min(quarter, sessions)
    ending = min(quarter, sessions - assessment)
    found = [Phase(ASSESSMENT, 1, assessment)]
    if sessions - assessment - ending > 0:
        found.append(Phase(MIDDLE, assessment + 1, sessions - ending))
    if ending > 0:
        found.append(Phase(ENDING, sessions - ending + 1, sessions))
    return found


def phase_of(number: int, sessions: int) -> str | None:
    """The phase of session ``number`` (1-based) of a course of ``sessions``; None outside it."""
    for phase in phases(sessions):
        if phase.first <= number <= phase.last:
            return phase.phase
    return None
