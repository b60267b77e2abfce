#!/bin/sh
# The standby: clones the primary on first start (pg_basebackup -R writes
# standby.signal and primary_conninfo), then runs as a streaming standby on
# the primary's replication slot.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -q -h postgres-primary -p 5432; do sleep 1; done
  PGPASSWORD="$(cat /run/secrets/pg_replication_password)" \
    pg_basebackup -h postgres-primary -p 5432 -U replicator -D "$PGDATA" -X stream -R -S standby
  chmod 0700 "$PGDATA"
fi
exec postgres
