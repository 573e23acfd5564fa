"""A small demo clinic, so ``make run`` on an empty data folder shows something at once.

Loaded after migrations by ``python -m services.availability.demo`` (the supervisor runs it, see
``clinic.supervisor.SETUP``) when ``CLINIC_DEMO`` is on (the default) and the availability
database has no therapist yet; ``CLINIC_DEMO=0`` starts empty (tests do).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

import clinic  # noqa: F401 (quiets eventlet's notice)
from clinic.db import UnitOfWork, create_engine_for, is_sqlite
from clinic.settings import Settings
from services.availability import inputs
from services.availability.models import Room, ScheduleRow, Therapist
from services.availability.repository import touch
from services.availability.search_cache import room_scope, therapist_scope

ROOMS = ({"id": "garden-room", "name": "Garden room"},
         {"id": "library-room", "name": "Library room"})

ALL = ["in_person", "video", "phone"]

THERAPISTS = (
    {
        "id": "amelia-hart", "name": "Dr Amelia Hart", "title": "Consultant psychotherapist",
        "email": "amelia.hart@clinic.example",
        "bio": "Amelia has offered Dynamic Interpersonal Therapy since its first training "
               "cohort and supervises the clinic's DIT practitioners. She works with "
               "depression and anxiety that keep returning.",
        "specialties": ["DIT", "depression", "anxiety"], "modalities": ALL,
        "schedule": [
            {"weekday": "monday", "start": "09:00", "end": "13:00", "modalities": ALL},
            {"weekday": "monday", "start": "14:00", "end": "18:00", "modalities": ["video"]},
            {"weekday": "wednesday", "start": "09:00", "end": "17:00", "modalities": ALL},
            {"weekday": "friday", "start": "10:00", "end": "15:00",
             "modalities": ["video", "phone"]},
        ],
    },
    {
        "id": "samuel-okafor", "name": "Samuel Okafor", "title": "DIT practitioner",
        "email": "samuel.okafor@clinic.example",
        "bio": "Samuel helps people notice the relationship patterns behind low mood, "
               "conflict at work and strain between partners, in brief focused courses.",
        "specialties": ["DIT", "relationships", "work stress"],
        "modalities": ["in_person", "video"],
        "schedule": [
            {"weekday": "tuesday", "start": "08:00", "end": "14:00",
             "modalities": ["in_person", "video"]},
            {"weekday": "thursday", "start": "12:00", "end": "20:00",
             "modalities": ["in_person", "video"]},
        ],
    },
    {
        "id": "priya-raman", "name": "Priya Raman", "title": "CBT therapist",
        "email": "priya.raman@clinic.example",
        "bio": "Priya offers cognitive behavioural therapy for panic, health anxiety and "
               "sleep problems, mostly by video and phone.",
        "specialties": ["CBT", "panic", "insomnia"], "modalities": ["video", "phone"],
        "schedule": [
            {"weekday": "monday", "start": "17:00", "end": "21:00",
             "modalities": ["video", "phone"]},
            {"weekday": "tuesday", "start": "09:00", "end": "13:00", "modalities": ["phone"]},
            {"weekday": "thursday", "start": "09:00", "end": "17:00",
             "modalities": ["video", "phone"]},
            {"weekday": "saturday", "start": "10:00", "end": "13:00", "modalities": ["video"]},
        ],
    },
)


def load_demo_clinic(uow: UnitOfWork, clinic_timezone: str = "Europe/London") -> bool:
    """Add the demo rooms, therapists and schedules unless any therapist exists; True if added."""
    now = datetime.now(UTC)
    with uow.transaction() as session:
        if session.scalar(select(Therapist.id).limit(1)) is not None:
            return False
        for room in ROOMS:
            if session.get(Room, room["id"]) is None:
                session.add(Room(**room))
        for entry in THERAPISTS:
            fields = {key: value for key, value in entry.items() if key != "schedule"}
            session.add(Therapist(**fields, timezone=clinic_timezone, created_at=now))
        session.flush()  # therapists before their schedules (no ORM relationship orders them)
        for entry in THERAPISTS:
            checked = inputs.schedule_input({"weekly": entry["schedule"]}, clinic_timezone)
            session.add(ScheduleRow(therapist_id=entry["id"], updated_at=now, **vars(checked)))
        # As any change a search would see: computed searches of these therapists stop.
        touch(session, [therapist_scope(entry["id"]) for entry in THERAPISTS]
              + [room_scope(room["id"]) for room in ROOMS])
    return True


def load_if_empty(database_url: str, clinic_timezone: str = "Europe/London") -> bool:
    """Open the availability database, load, close."""
    import threading

    engine = create_engine_for(database_url)
    try:
        lock = threading.Lock() if is_sqlite(database_url) else None
        return load_demo_clinic(UnitOfWork(engine, lock), clinic_timezone)
    except IntegrityError:  # another supervisor loaded it at the same moment
        return False
    finally:
        engine.dispose()


def main() -> int:
    """``python -m services.availability.demo``: what ``start.sh`` runs after migrating (and the
    supervisor, ``clinic.supervisor.SETUP``), so ``CLINIC_DEMO`` means the same under docker
    compose as under ``make run``."""
    settings = Settings.from_env()
    if settings.demo and load_if_empty(settings.database_url("availability"),
                                       settings.clinic_timezone):
        print("demo clinic loaded: three therapists, two rooms (CLINIC_DEMO=0 starts empty)",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
