from clinic.migrations_env import run
from services.booking.models import metadata

run(metadata)
