#!/usr/bin/env bash
# Stops PostgreSQL in the middle of a sustained ingest run, starts it again, and checks that
# every event answered 201 is stored exactly once (web/fault_test.go).
#
# It restarts a whole PostgreSQL cluster. By default that is the cluster "15 main" at
# 127.0.0.1:5432; to leave a shared server alone, make a throwaway cluster and point the
# test at it:
#
#   pg_createcluster 15 fault --port 5433 --start
#   AUDITDB_FAULT_CLUSTER="15 fault" \
#   AUDITDB_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5433/postgres?sslmode=disable \
#     scripts/fault-ingest.sh
#   pg_dropcluster 15 fault --stop
#
# pg_ctlcluster must be allowed to stop the cluster (run as root or postgres). Trust
# authentication for local TCP connections is assumed, as in development.
set -euo pipefail
cd "$(dirname "$0")/.."
export AUDITDB_FAULT_TESTS=1
export AUDITDB_FAULT_CLUSTER="${AUDITDB_FAULT_CLUSTER:-15 main}"
exec go test ./web/ -run TestFaultDatabaseRestartDuringIngest -count=1 -v "$@"
