#!/bin/sh
# Backports Patroni's reading of etcd's newer error replies (upstream #3486 and #3562,
# Patroni 4.1) to Debian's Patroni 4.0.x.
# etcd's gRPC gateway answers an error as {"code": 3, "message": "..."}, without the
# "error" field Patroni 4.0 reads: Patroni then sees "InvalidArgument 'None'" where etcd
# said "etcdserver: user name is empty", and never logs in again. Seen after an etcd
# quorum loss: two of Patroni's threads logged in at once, the login left the client
# without a token, and the node's watch failed every second for minutes
# ("KVCache.run <InvalidArgument error: 'None', code: 3>") until the cluster gave up on it.
# With the message read, that reply is UserEmpty and Patroni logs in again at once.
# A Patroni that already reads it (PGDG's newer releases) is left as it is; code that moved
# otherwise fails the build, so that this file gets reviewed.
set -eu
. "$(dirname "$0")/edit-line.sh"
pkg=$(python3 -c 'import os, patroni; print(os.path.dirname(patroni.__file__))')
f="$pkg/dcs/etcd3.py"
if ! grep -q "data.get('message')" "$f"; then
	edit_line "$f" \
		"            error = str(data_error)" \
		"            error = str(data_error or data.get('message') or data)  # pgha: upstream #3486"
	edit_line "$f" \
		"            code: Optional[int] = data_error['grpc_code']" \
		"            code: Optional[int] = data_error.get('code') or data_error['grpc_code']  # pgha: upstream #3562"
	python3 -m compileall -q -f "$f"
fi
# The reply seen in the failure must now mean "log in again".
python3 - <<'PY'
from patroni.dcs.etcd3 import _raise_for_data, UserEmpty
assert isinstance(_raise_for_data({"code": 3, "message": "etcdserver: user name is empty"}), UserEmpty)
# Named AuthOldRevision in 4.0, RevisionOfAuthStoreIsOld in 4.1.
e = _raise_for_data({"code": 3, "message": "etcdserver: revision of auth store is old"})
assert type(e).__name__ in ("AuthOldRevision", "RevisionOfAuthStoreIsOld"), repr(e)
PY
echo "pgha: Patroni reads etcd's error messages (user name is empty -> log in again)"
