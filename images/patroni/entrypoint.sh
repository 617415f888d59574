#!/bin/sh
# pgha Patroni entrypoint: write the configuration from PGHA_PATRONI_YML, then become Patroni.
# Secrets are not in the YAML: Patroni reads PATRONI_SUPERUSER_*, PATRONI_REPLICATION_* and
# PATRONI_RESTAPI_* from the environment and merges them over the file.
set -eu

config="${PGHA_PATRONI_CONFIG:-/etc/patroni/patroni.yml}"

if [ -z "${PGHA_PATRONI_YML:-}" ]; then
    echo "pgha-entrypoint: PGHA_PATRONI_YML is empty or unset; it must hold the Patroni YAML configuration" >&2
    exit 64
fi

umask 077
tmp="${config}.tmp.$$"
if ! printf '%s\n' "$PGHA_PATRONI_YML" > "$tmp"; then
    echo "pgha-entrypoint: cannot write $tmp (running as $(id -un 2>/dev/null || id -u)); $(dirname "$config") must be writable by this user" >&2
    exit 73
fi
chmod 0600 "$tmp"
mv -f "$tmp" "$config"
# Keep the YAML out of Patroni's environment (and so out of its children's).
unset PGHA_PATRONI_YML

# exec: Patroni becomes PID 1, receives the stop signal itself and, being PID 1,
# forks PostgreSQL management into a child and reaps zombies.
if [ "$#" -gt 0 ]; then
    exec "$@"
fi
exec patroni "$config"
