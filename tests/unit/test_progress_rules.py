"""Progress's pure rules: the questionnaires' wording, scoring, reliable change, recovery, the
phases of a course of 1 to 52 sessions, and where a course is."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinic import phases
from clinic.errors import InvalidState
from services.progress import journey, questionnaires, scoring
from services.progress.journey import CourseFacts, KnownSession

answer = st.integers(min_value=0, max_value=3)
phq9_answers = st.lists(answer, min_size=9, max_size=9)
gad7_answers = st.lists(answer, min_size=7, max_size=7)
totals = st.fixed_dictionaries({"phq9": st.integers(0, 27), "gad7": st.integers(0, 21)})


# ---- questionnaires -----------------------------------------------------------------------

def test_the_published_wording_and_options():
    phq9, gad7 = questionnaires.catalogue()
    assert phq9["id"] == "phq9" and gad7["id"] == "gad7"
    assert len(phq9["items"]) == 9 and len(gad7["items"]) == 7
    assert phq9["items"][0] == "Little interest or pleasure in doing things"
    assert phq9["items"][8] == ("Thoughts that you would be better off dead or of hurting "
                                "yourself in some way")
    assert gad7["items"][1] == "Not being able to stop or control worrying"
    assert gad7["items"][6] == "Feeling afraid as if something awful might happen"
    for q in (phq9, gad7):
        assert q["prompt"].startswith("Over the last 2 weeks, how often have you been bothered")
        assert q["options"] == [{"value": 0, "label": "Not at all"},
                                {"value": 1, "label": "Several days"},
                                {"value": 2, "label": "More than half the days"},
                                {"value": 3, "label": "Nearly every day"}]
    assert [(b["min"], b["max"], b["label"]) for b in phq9["bands"]] == [
        (0, 4, "minimal"), (5, 9, "mild"), (10, 14, "moderate"), (15, 19, "moderately_severe"),
        (20, 27, "severe")]
    assert [(b["min"], b["max"], b["label"]) for b in gad7["bands"]] == [
        (0, 4, "minimal"), (5, 9, "mild"), (10, 14, "moderate"), (15, 21, "severe")]


def test_urgent_help_names_nhs_111_samaritans_and_999():
    phones = {c["name"]: c["phone"] for c in questionnaires.URGENT_HELP["contacts"]}
    assert phones == {"NHS 111": "111", "Samaritans": "116 123", "Emergency services": "999"}


# ---- scoring ------------------------------------------------------------------------------

@given(phq9_answers, gad7_answers)
def test_totals_are_the_sums_and_severity_is_the_band_holding_them(phq9, gad7):
    scores = scoring.score_check_in(phq9, gad7)
    assert scores.phq9.total == sum(phq9) and scores.gad7.total == sum(gad7)
    for q, score in ((questionnaires.PHQ9, scores.phq9), (questionnaires.GAD7, scores.gad7)):
        (band,) = [b for b in q.bands if b.min <= score.total <= b.max]
        assert score.severity == band.label


@given(phq9_answers, gad7_answers)
def test_risk_is_item_nine_above_zero_whatever_the_total(phq9, gad7):
    assert scoring.score_check_in(phq9, gad7).risk == (phq9[8] > 0)


def test_risk_with_an_otherwise_minimal_score():
    scores = scoring.score_check_in([0] * 8 + [1], [0] * 7)
    assert scores.risk and scores.phq9.severity == "minimal"


@pytest.mark.parametrize(("measure", "edges"), [
    (questionnaires.PHQ9, [(4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"),
                           (14, "moderate"), (15, "moderately_severe"),
                           (19, "moderately_severe"), (20, "severe"), (27, "severe")]),
    (questionnaires.GAD7, [(0, "minimal"), (4, "minimal"), (5, "mild"), (10, "moderate"),
                           (14, "moderate"), (15, "severe"), (21, "severe")]),
])
def test_band_edges(measure, edges):
    for total, label in edges:
        assert scoring.severity(measure, total) == label


@pytest.mark.parametrize("bad", [[0] * 8, [0] * 10, [0] * 8 + [4], [0] * 8 + [-1],
                                 [0] * 8 + [True], [0] * 8 + [1.0]])
def test_answers_must_be_nine_whole_numbers_0_to_3(bad):
    with pytest.raises(scoring.InvalidAnswers):
        scoring.score(questionnaires.PHQ9, bad)


@given(totals, totals)
def test_reliable_change_definitions(baseline, latest):
    falls = {m for m, limit in (("phq9", 6), ("gad7", 4)) if baseline[m] - latest[m] >= limit}
    rises = {m for m, limit in (("phq9", 6), ("gad7", 4)) if latest[m] - baseline[m] >= limit}
    assert scoring.reliable_improvement(baseline, latest) == (bool(falls) and not rises)
    assert scoring.reliable_deterioration(baseline, latest) == (bool(rises) and not falls)
    assert not (scoring.reliable_improvement(baseline, latest)
                and scoring.reliable_deterioration(baseline, latest))


@given(totals, totals)
def test_recovery_definition(baseline, latest):
    was_case = baseline["phq9"] >= 10 or baseline["gad7"] >= 8
    below_both = latest["phq9"] < 10 and latest["gad7"] < 8
    assert scoring.recovery(baseline, latest) == (below_both if was_case else None)


@pytest.mark.parametrize(("baseline", "latest", "improved", "worse", "recovered"), [
    ({"phq9": 16, "gad7": 12}, {"phq9": 10, "gad7": 12}, True, False, False),  # exactly 6
    ({"phq9": 16, "gad7": 12}, {"phq9": 11, "gad7": 9}, False, False, False),  # 5 and 3
    ({"phq9": 16, "gad7": 12}, {"phq9": 9, "gad7": 7}, True, False, True),  # below both
    ({"phq9": 9, "gad7": 8}, {"phq9": 9, "gad7": 4}, True, False, True),  # GAD-7 case only
    ({"phq9": 9, "gad7": 7}, {"phq9": 2, "gad7": 2}, True, False, None),  # never a case
    ({"phq9": 16, "gad7": 4}, {"phq9": 10, "gad7": 8}, False, False, False),  # fall and rise
    ({"phq9": 4, "gad7": 4}, {"phq9": 10, "gad7": 5}, False, True, None),
])
def test_reliable_change_and_recovery_examples(baseline, latest, improved, worse, recovered):
    assert scoring.reliable_improvement(baseline, latest) is improved
    assert scoring.reliable_deterioration(baseline, latest) is worse
    assert scoring.recovery(baseline, latest) is recovered


def test_outcome_before_two_check_ins_has_no_latest_and_no_verdicts():
    assert scoring.outcome([]) == scoring.Outcome(None, None, None, None, None)
    one = scoring.outcome([{"phq9": 15, "gad7": 10}])
    assert one.baseline == {"phq9": 15, "gad7": 10} and one.latest is None
    assert one.reliable_improvement is None and one.recovery is None
    three = scoring.outcome([{"phq9": 15, "gad7": 10}, {"phq9": 20, "gad7": 20},
                             {"phq9": 5, "gad7": 3}])
    assert three.latest == {"phq9": 5, "gad7": 3} and three.recovery is True


# ---- phases -------------------------------------------------------------------------------

@pytest.mark.parametrize("sessions", range(1, phases.MAX_SESSIONS + 1))
def test_phases_cover_every_session_once_in_order(sessions):
    found = phases.phases(sessions)
    numbers = [n for p in found for n in range(p.first, p.last + 1)]
    assert numbers == list(range(1, sessions + 1))
    names = [p.phase for p in found]
    assert names == sorted(names, key=["assessment", "middle", "ending"].index)
    quarter = math.ceil(sessions / 4)
    assert found[0].phase == "assessment" and found[0].last == quarter
    if sessions >= 2:
        assert found[-1].phase == "ending" and found[-1].last - found[-1].first + 1 == quarter
    if sessions >= 3:
        assert names == ["assessment", "middle", "ending"]
    for p in found:
        for n in range(p.first, p.last + 1):
            assert phases.phase_of(n, sessions) == p.phase
    assert phases.phase_of(0, sessions) is None and phases.phase_of(sessions + 1, sessions) is None


def test_phases_of_the_usual_and_tiny_courses():
    assert [p.as_dict() for p in phases.phases(16)] == [
        {"phase": "assessment", "first": 1, "last": 4}, {"phase": "middle", "first": 5, "last": 12},
        {"phase": "ending", "first": 13, "last": 16}]
    assert [(p.phase, p.first, p.last) for p in phases.phases(1)] == [("assessment", 1, 1)]
    assert [(p.phase, p.first, p.last) for p in phases.phases(2)] == [
        ("assessment", 1, 1), ("ending", 2, 2)]
    assert [(p.phase, p.first, p.last) for p in phases.phases(5)] == [
        ("assessment", 1, 2), ("middle", 3, 3), ("ending", 4, 5)]


# ---- where a course is -------------------------------------------------------------------

START = datetime(2027, 3, 2, 10, 0, tzinfo=UTC)


def course(count: int = 16, cancelled: tuple[int, ...] = (), status: str = "active"
           ) -> CourseFacts:
    sessions = [KnownSession(f"bk-{n}", "crs-1", n, START + timedelta(weeks=n - 1),
                             START + timedelta(weeks=n - 1, minutes=50),
                             "cancelled" if n in cancelled else "confirmed", 0)
                for n in range(1, count + 1)]
    return CourseFacts("crs-1", "dr-jo", count, status, sessions)


def test_a_check_in_belongs_to_the_next_session_not_ended():
    assert journey.check_in_target(course(), set(), START - timedelta(days=3)).number == 1
    during_first = START + timedelta(minutes=20)
    assert journey.check_in_target(course(), set(), during_first).number == 1
    after_first = START + timedelta(hours=1)
    assert journey.check_in_target(course(), {1}, after_first).number == 2
    # a cancelled session is skipped
    assert journey.check_in_target(course(cancelled=(2,)), {1}, after_first).number == 3


def test_no_check_in_twice_after_the_end_or_on_a_cancelled_course():
    with pytest.raises(InvalidState):
        journey.check_in_target(course(), {1}, START - timedelta(days=1))
    with pytest.raises(InvalidState):
        journey.check_in_target(course(), set(), START + timedelta(weeks=20))
    with pytest.raises(InvalidState):
        journey.check_in_target(course(status="cancelled"), set(), START)


def test_current_phase_follows_the_next_session():
    assert journey.current_phase(course(), START - timedelta(days=1)) == "assessment"
    assert journey.current_phase(course(), START + timedelta(weeks=4, hours=1)) == "middle"
    assert journey.current_phase(course(), START + timedelta(weeks=12, hours=1)) == "ending"
    assert journey.current_phase(course(), START + timedelta(weeks=30)) == "ending"


def test_the_client_sees_the_letter_only_once_shared():
    draft = CourseFacts("crs-1", "dr-jo", 16, "active", [], letter_text="Dear Ann",
                        letter_status="draft")
    assert journey.progress_view(draft, [], START, for_therapist=False)["letter"] is None
    assert journey.progress_view(draft, [], START, for_therapist=True)["letter"]["text"] == \
        "Dear Ann"
    assert "risk_unseen" not in journey.progress_view(draft, [], START, for_therapist=False)


def test_the_access_log_names_no_manage_token():
    from gateway.security import loggable

    line = '"GET /api/v1/courses/c1/progress?token=mng_secret&course=c1 HTTP/1.1" 200'
    assert "mng_secret" not in loggable(line)
    assert "mng_x" not in loggable('"GET /progress?course=c1&token=mng_x HTTP/1.1" 200')
