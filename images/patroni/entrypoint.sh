#!/bin/sh
# pgha Patroni entrypoint. pgha copies the whole configuration, secrets included, to
# $PGHA_PATRONI_CONFIG (mode 0600, owned by postgres) before each start, so no password sits
# in the container's environment. Without that file (a container made by hand), the YAML
# may come from PGHA_PATRONI_YML, with the secrets in Patroni's PATRONI_* variables.
set -eu

config="${PGHA_PATRONI_CONFIG:-/etc/patroni/patroni.yml}"

if [ -n "${PGHA_PATRONI_YML:-}" ]; then
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
elif [ ! -r "$config" ]; then
    echo "pgha-entrypoint: no Patroni configuration: $config is missing (pgha copies it in before start) and PGHA_PATRONI_YML is empty" >&2
    exit 64
fi

# exec: Patroni becomes PID 1, receives the stop signal itself and, being PID 1,
# forks PostgreSQL management into a child and reaps zombies.
if [ "$#" -gt 0 ]; then
    exec "$@"
fi
exec patroni "$config"
