from clinic.migrations_env import run
from services.progress.models import metadata

run(metadata)
