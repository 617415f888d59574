#!/bin/sh
# pgha-pgbackrest-push: PostgreSQL's archive_command (%p is the argument; the working
# directory is the data directory). It is `pgbackrest archive-push`, with one exception.
#
# After failovers a node can hold a WAL segment of an older timeline that it never
# finished: a former primary's crash leftover, or the part of a segment a standby had
# received before it followed a new timeline. Promoted later, the node archives such a
# segment, and pgBackRest refuses it forever (exit 45: the repository already holds that
# segment with other contents), so no later segment is archived either. The
# repository's copy is the one its timeline's history follows: for a segment of a
# timeline older than the newest the node knows, pgha keeps that copy and reports success.
set -u
wal="$1"
pgbackrest archive-push "$wal"
rc=$?
[ "$rc" -eq 45 ] || exit "$rc"

name=$(basename "$wal")
# Only WAL segments: 24 hexadecimal digits, the first 8 the timeline.
printf '%s' "$name" | grep -Eq '^[0-9A-F]{24}$' || exit "$rc"
tli=$(printf '%s' "$name" | cut -c1-8)
newest=$(ls "$(dirname "$wal")" | grep -E '^[0-9A-F]{8}\.history$' | sort | tail -n 1 | cut -c1-8)
if [ -n "$newest" ] && [ "$tli" \< "$newest" ]; then
    echo "pgha-pgbackrest-push: $name is on timeline $tli, older than this node's timeline $newest, and the repository already holds another copy of it: the repository's copy stands" >&2
    exit 0
fi
exit "$rc"
