"""The two questionnaires of a check-in, in their published wording (both free to use).

PHQ-9 (Kroenke, Spitzer, Williams 2001) and GAD-7 (Spitzer, Kroenke, Williams, Löwe 2006), as
printed on the Pfizer forms: the same prompt, the same four answers scored 0-3, and the
severity bands of docs/http-contract.md. Nothing here may be reworded: the scores are only
comparable with the published norms if the questions are the published ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OPTIONS = ((0, "Not at all"), (1, "Several days"), (2, "More than half the days"),
           (3, "Nearly every day"))


@dataclass(frozen=True)
class Band:
    min: int
    max: int
    label: str


@dataclass(frozen=True)
class Questionnaire:
    id: str
    title: str
    prompt: str
    items: tuple[str, ...]
    bands: tuple[Band, ...]

    @property
    def max_total(self) -> int:
        return 3 * len(self.items)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "prompt": self.prompt,
                "items": list(self.items),
                "options": [{"value": value, "label": label} for value, label in OPTIONS],
                "bands": [{"min": b.min, "max": b.max, "label": b.label} for b in self.bands]}


PHQ9 = Questionnaire(
    id="phq9",
    title="Patient Health Questionnaire (PHQ-9)",
    prompt="Over the last 2 weeks, how often have you been bothered by any of the following "
           "problems?",
    items=(
        "Little interest or pleasure in doing things",
        "Feeling down, depressed, or hopeless",
        "Trouble falling or staying asleep, or sleeping too much",
        "Feeling tired or having little energy",
        "Poor appetite or overeating",
        "Feeling bad about yourself — or that you are a failure or have let yourself or your "
        "family down",
        "Trouble concentrating on things, such as reading the newspaper or watching television",
        "Moving or speaking so slowly that other people could have noticed? Or the opposite — "
        "being so fidgety or restless that you have been moving around a lot more than usual",
        "Thoughts that you would be better off dead or of hurting yourself in some way",
    ),
    bands=(Band(0, 4, "minimal"), Band(5, 9, "mild"), Band(10, 14, "moderate"),
           Band(15, 19, "moderately_severe"), Band(20, 27, "severe")),
)

GAD7 = Questionnaire(
    id="gad7",
    title="Generalized Anxiety Disorder 7-item (GAD-7) scale",
    prompt="Over the last 2 weeks, how often have you been bothered by the following problems?",
    items=(
        "Feeling nervous, anxious or on edge",
        "Not being able to stop or control worrying",
        "Worrying too much about different things",
        "Trouble relaxing",
        "Being so restless that it is hard to sit still",
        "Becoming easily annoyed or irritable",
        "Feeling afraid as if something awful might happen",
    ),
    bands=(Band(0, 4, "minimal"), Band(5, 9, "mild"), Band(10, 14, "moderate"),
           Band(15, 21, "severe")),
)

QUESTIONNAIRES = (PHQ9, GAD7)
BY_ID = {q.id: q for q in QUESTIONNAIRES}

# PHQ-9 item 9 (thoughts of self-harm), zero-based.
SELF_HARM_ITEM = 8

URGENT_HELP = {
    "message": "If you are thinking about harming yourself, please get help now. You do not "
               "have to wait for your next session.",
    "contacts": [
        {"name": "NHS 111", "phone": "111",
         "when": "for urgent help and advice, day or night (or 111.nhs.uk)"},
        {"name": "Samaritans", "phone": "116 123",
         "when": "to talk to someone, free, any time, day or night"},
        {"name": "Emergency services", "phone": "999",
         "when": "in an emergency, or if you might act on these thoughts"},
    ],
}


def catalogue() -> list[dict[str, Any]]:
    return [q.as_dict() for q in QUESTIONNAIRES]
