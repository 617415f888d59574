#!/bin/sh
# pgha-pgbackrest-get: PostgreSQL's restore_command (%f %p are the arguments). It is
# `pgbackrest archive-get`, but it gives up at once when the object store's name does
# not resolve: its container is gone, with its host on a swarm. A replica's promotion
# asks the archive for the next timeline's history file; against a store that is gone,
# pgBackRest's retries held a promotion for minutes (measured). Exit 1 is what
# PostgreSQL takes for "not in the archive", so recovery goes on from what it has.
set -u
store="${PGBACKREST_REPO1_S3_ENDPOINT:-objectstore}"
if ! getent hosts "$store" >/dev/null 2>&1; then
	echo "pgha-pgbackrest-get: the object store $store has no address: $1 not fetched" >&2
	exit 1
fi
# A store that resolves but does not answer: 1 s without a byte means it is gone.
exec pgbackrest --io-timeout=1 archive-get "$1" "$2"
