"""Tables the booking service owns."""

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from clinic.outbox import outbox_table


class Base(DeclarativeBase):
    metadata = MetaData()


metadata = Base.metadata
outbox = outbox_table(metadata)
