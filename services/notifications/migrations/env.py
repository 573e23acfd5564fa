from clinic.migrations_env import run
from services.notifications.models import metadata

run(metadata)
