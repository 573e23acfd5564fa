#!/bin/sh
# Start the notifications service alone: bring its database to head, then run it.
set -e
cd "$(dirname "$0")/../.."
python -m clinic.migrate notifications
exec python -m clinic.cli run --config services/notifications/config.yml services.notifications.service:NotificationsService
