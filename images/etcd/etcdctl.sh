#!/bin/sh
# etcdctl with the member's credentials: the cluster's etcd requires a login,
# and the password stays in a 0600 file instead of the container's environment.
# ETCDCTL_ENDPOINTS and ETCDCTL_CACERT come from the image; a --user flag or an
# ETCDCTL_USER of the caller's own wins.
f=/etc/pgha/etcd/etcdctl.user
if [ -z "${ETCDCTL_USER:-}" ] && [ -r "$f" ]; then
    ETCDCTL_USER=$(cat "$f")
    export ETCDCTL_USER
fi
exec /usr/bin/etcdctl "$@"
