#!/usr/bin/env bash
# Runs once, on the first start of an empty PostgreSQL volume: the SealFlow registry gets its own
# database and role next to Airflow's metadata database.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v sealflow_password="$SEALFLOW_DB_PASSWORD" <<'EOSQL'
CREATE ROLE sealflow LOGIN PASSWORD :'sealflow_password';
CREATE DATABASE sealflow OWNER sealflow;
EOSQL
