#!/bin/sh
# Start the progress service alone: bring its database to head, then run it.
set -e
cd "$(dirname "$0")/../.."
python -m clinic.migrate progress
exec python -m clinic.cli run --config services/progress/config.yml services.progress.service:ProgressService
