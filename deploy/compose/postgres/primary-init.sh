#!/bin/sh
# Runs once, when the primary's data directory is created
# (docker-entrypoint-initdb.d): vitals' monitoring role, the replication
# role and slot for the standby, the application's role, the heartbeat table.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v monitor_password="$(cat /run/secrets/pg_monitor_password)" \
  -v replication_password="$(cat /run/secrets/pg_replication_password)" \
  -v app_password="$(cat /run/secrets/pg_app_password)" <<'SQL'
CREATE ROLE vitals LOGIN PASSWORD :'monitor_password';
GRANT pg_monitor TO vitals;
CREATE ROLE replicator LOGIN REPLICATION PASSWORD :'replication_password';
CREATE ROLE app LOGIN PASSWORD :'app_password';
CREATE TABLE vitals_heartbeat (id int PRIMARY KEY, ts timestamptz NOT NULL);
GRANT SELECT, INSERT, UPDATE ON vitals_heartbeat TO vitals;
SELECT pg_create_physical_replication_slot('standby');
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
