#!/bin/sh
# pgha object store entrypoint: the root account comes from a file pgha copies in before
# start (mode 0600, uid 10001), never from the container's environment: versitygw reads
# its root keys only from flags or variables, so they are exported here, to its process alone.
set -eu
f=/etc/pgha/secrets/root.env
if [ ! -r "$f" ]; then
    echo "pgha-objectstore: $f is missing; pgha copies the root account in before start" >&2
    exit 64
fi
while IFS='=' read -r k v; do
    case "$k" in
        ROOT_ACCESS_KEY|ROOT_SECRET_KEY) export "$k=$v" ;;
    esac
done < "$f"
exec /usr/local/bin/versitygw --port :9000 \
    --cert /etc/pgha/tls/server.crt --key /etc/pgha/tls/server.key \
    --iam-dir /iam --health /health --quiet \
    posix /data
