#!/bin/sh
# Start the availability service alone: bring its database to head, then run it.
set -e
cd "$(dirname "$0")/../.."
python -m clinic.migrate availability
python -m services.availability.demo  # CLINIC_DEMO=0 starts empty
exec python -m clinic.cli run --config services/availability/config.yml services.availability.service:AvailabilityService
