from clinic.migrations_env import run
from services.availability.models import metadata

run(metadata)
