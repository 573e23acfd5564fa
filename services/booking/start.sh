#!/bin/sh
# Start the booking service alone: bring its database to head, then run it.
set -e
cd "$(dirname "$0")/../.."
python -m clinic.migrate booking
exec python -m clinic.cli run --config services/booking/config.yml services.booking.service:BookingService
