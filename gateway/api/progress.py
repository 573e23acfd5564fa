"""Progress (docs/http-contract.md): questionnaires, check-ins, the course's progress, focus,
letter, risk.

Answers carrying health data go out with ``Cache-Control: no-store``. The progress service
decides who may see what (a manage token is checked by booking, which issued it).
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, Field
from werkzeug.wrappers import Response

from clinic.access import Caller
from gateway.entrypoints import api
from gateway.schemas import Body, Whole

Answer = Annotated[Whole, Field(ge=0, le=3)]


class Answers(Body):
    phq9: list[Answer] = Field(min_length=9, max_length=9,
                               description="The nine PHQ-9 answers in order, each 0 to 3.")
    gad7: list[Answer] = Field(min_length=7, max_length=7,
                               description="The seven GAD-7 answers in order, each 0 to 3.")


class CheckInRequest(Body):
    answers: Answers
    reflection: str | None = Field(default=None, max_length=4000,
                                   description="A few words on what the client tried.")


class FocusRequest(Body):
    interpersonal: str = Field(max_length=2000)
    affective: str = Field(max_length=2000)


class LetterRequest(Body):
    text: str = Field(max_length=20000)


class Option(BaseModel):
    value: int
    label: str


class Band(BaseModel):
    min: int
    max: int
    label: str


class Questionnaire(BaseModel):
    id: Literal["phq9", "gad7"]
    title: str
    prompt: str
    items: list[str]
    options: list[Option]
    bands: list[Band]


class Score(BaseModel):
    total: int
    severity: str


class CheckIn(BaseModel):
    id: str
    course_id: str
    session_number: int
    submitted_at: str
    phq9: Score
    gad7: Score
    risk: bool
    urgent_help: dict | None = Field(default=None,
                                     description="Where urgent help is; present when risk.")


class Totals(BaseModel):
    phq9: int
    gad7: int


class PhaseOut(BaseModel):
    phase: Literal["assessment", "middle", "ending"]
    first: int
    last: int


class CheckInRecord(BaseModel):
    id: str
    session_number: int
    phase: str | None = None
    submitted_at: str
    phq9: Score
    gad7: Score
    risk: bool
    reflection: str | None = None


class Focus(BaseModel):
    interpersonal: str
    affective: str
    updated_at: str


class Letter(BaseModel):
    status: Literal["draft", "shared"]
    text: str | None = None
    updated_at: str | None = None
    shared_at: str | None = None


class ProgressOut(BaseModel):
    course_id: str
    status: str
    sessions: int
    phases: list[PhaseOut]
    current_phase: str | None
    next_session: dict | None
    first_start: str | None
    last_end: str | None
    schedule: list[dict]
    check_in_open_for: int | None
    check_ins: list[CheckInRecord]
    baseline: Totals | None
    latest: Totals | None
    reliable_improvement: bool | None
    reliable_deterioration: bool | None
    recovery: bool | None
    focus: Focus | None
    letter: Letter | None
    risk_unseen: bool | None = Field(default=None, description="Therapist and admin only.")


class CourseSummary(BaseModel):
    course_id: str
    therapist_id: str
    status: str
    sessions: int
    current_phase: str | None
    next_session: int | None
    check_ins: int
    latest: Totals | None
    risk_unseen: bool


class LetterState(BaseModel):
    status: Literal["draft", "shared"]
    updated_at: str | None = None
    shared_at: str | None = None


class RiskSeen(BaseModel):
    course_id: str
    risk_unseen: bool


def private(payload, status: int = 200) -> Response:
    """Health data: never kept by a browser or proxy cache."""
    return Response(json.dumps(payload), status=status, mimetype="application/json",
                    headers={"Cache-Control": "no-store"})


class ProgressApi:
    @api("GET", "/api/v1/questionnaires",
         summary="PHQ-9 and GAD-7 in their published wording, answers and bands.",
         tag="progress", reply=list[Questionnaire])
    def questionnaires(self, request):
        return self.progress.questionnaires()

    @api("POST", "/api/v1/courses/{course_id}/check-ins",
         summary="The client's check-in for the course's next session not yet ended.",
         tag="progress", body=CheckInRequest, reply=CheckIn, status=201, access="owner",
         errors=(400, 401, 403, 404, 409))
    def submit_check_in(self, request, caller: Caller, course_id, body: CheckInRequest):
        answer = self.progress.submit_check_in(caller.to_rpc(), course_id,
                                               body.answers.model_dump(), body.reflection)
        return private(answer, 201)

    @api("GET", "/api/v1/courses/{course_id}/progress",
         summary="Phases, check-ins and scores, reliable change, focus and letter of a course.",
         tag="progress", reply=ProgressOut, access="owner", errors=(401, 404))
    def get_progress(self, request, caller: Caller, course_id):
        return private(self.progress.get_progress(caller.to_rpc(), course_id))

    @api("PUT", "/api/v1/courses/{course_id}/focus",
         summary="The focus agreed at the end of the assessment phase.", tag="progress",
         body=FocusRequest, reply=Focus, access="therapist", errors=(400, 401, 403, 404))
    def put_focus(self, request, caller: Caller, course_id, body: FocusRequest):
        return private(self.progress.put_focus(caller.to_rpc(), course_id, body.interpersonal,
                                               body.affective))

    @api("PUT", "/api/v1/courses/{course_id}/letter",
         summary="The goodbye letter's draft (the client sees it once shared).", tag="progress",
         body=LetterRequest, reply=LetterState, access="therapist",
         errors=(400, 401, 403, 404, 409))
    def put_letter(self, request, caller: Caller, course_id, body: LetterRequest):
        return private(self.progress.put_letter(caller.to_rpc(), course_id, body.text))

    @api("POST", "/api/v1/courses/{course_id}/letter/share",
         summary="Share the goodbye letter with the client (they are emailed that it is there).",
         tag="progress", reply=LetterState, access="therapist", errors=(401, 403, 404, 409))
    def share_letter(self, request, caller: Caller, course_id):
        return private(self.progress.share_letter(caller.to_rpc(), course_id))

    @api("POST", "/api/v1/courses/{course_id}/risk/seen",
         summary="The therapist has seen the course's risk flag (extension).", tag="progress",
         reply=RiskSeen, access="therapist", errors=(401, 403, 404))
    def mark_risk_seen(self, request, caller: Caller, course_id):
        return self.progress.mark_risk_seen(caller.to_rpc(), course_id)

    @api("GET", "/api/v1/therapists/{therapist_id}/courses",
         summary="A therapist's courses with phase, check-ins and any unseen risk (extension).",
         tag="progress", reply=list[CourseSummary], access="therapist",
         errors=(401, 403))
    def therapist_courses(self, request, caller: Caller, therapist_id):
        return private(self.progress.therapist_courses(caller.to_rpc(), therapist_id))
