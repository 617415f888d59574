#!/bin/sh
# Entry point of a pgha test host: a Docker engine in a container (pkg/hosts).
# The socket directory is bind-mounted from the machine; /run is a tmpfs.
set -eu
mkdir -p /run/dind
# A socket left by an engine that was killed would make dockerd refuse to start.
rm -f /run/dind/docker.sock /run/docker.pid /var/run/docker.pid
# Make mounts shared, as dockerd on a systemd machine expects (volume propagation).
mount --make-rshared / 2>/dev/null || true
exec "$@"
