"""Tables the availability service owns."""

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from clinic.events import processed_events_table


class Base(DeclarativeBase):
    metadata = MetaData()


metadata = Base.metadata
processed_events = processed_events_table(metadata)
