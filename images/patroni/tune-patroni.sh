#!/bin/sh
# Shortens the fixed waits in Patroni's planned hand-overs (docker stop, switchover).
# Measured on this machine: the REST API's shutdown put 0.23 s (up to 0.5) between
# `docker stop` and PostgreSQL's fast shutdown; the shutdown's polling and a sleep put
# about 0.9 s between PostgreSQL's clean shutdown and the release of the leader key; the
# candidate's question to the stopping primary hung until that process exited (0.14 s
# after the release); and a sleep kept a strict-mode switchover's synchronous standby
# 2 s from the new primary.
#  - The REST API's poll interval: on SIGTERM Patroni shuts its REST API down before it
#    stops PostgreSQL, and socketserver's shutdown() waits for serve_forever() to look at
#    its flag, which it does every poll_interval (Python's default 0.5 s): a stopped
#    primary kept taking writes for 0-0.5 s after the signal. 0.05 s: the same order, the
#    same shutdown, noticed sooner (an idle wake-up is one select() call).
#  - The REST API's socket is closed once it is shut down (server_close(), which Patroni
#    itself calls when its listen address changes; its request threads are daemons, so
#    nothing is joined). Before, the socket kept listening with nobody serving it: the
#    kernel took every connection and left it hanging until the process exited, so the
#    candidate's status check of the stopping primary (and the router's health checks)
#    waited for that exit; now they are refused at once, which is what a stopped member's
#    answer means to both.
#  - STOP_POLLING_INTERVAL: after signalling the postmaster to stop, Patroni reads
#    pg_controldata every STOP_POLLING_INTERVAL seconds (1) to learn that the shutdown
#    checkpoint is written; 0.05 notices it within 50 ms (pg_controldata takes a few).
#  - "give replicas some more time to catch up": a fixed 1 s sleep before Patroni asks the
#    replicas whether they received the shutdown checkpoint. The question itself
#    (is_failover_possible with the checkpoint's LSN) is what keeps the hand-over safe: when
#    no replica has it yet, the key is kept and released only after the postmaster exits,
#    exactly as before. 0.05 s: the replicas here had the checkpoint 25 ms after it was
#    written (a slower network only takes the slower, equally safe path).
#  - "Give a time to somebody to take the leader lock": during a switchover (a failover key
#    is set) a replica that is not the healthiest node sleeps 2 s before it follows whoever
#    holds the leader key then. In strict synchronous mode that replica is the only possible
#    synchronous standby, so the new primary took no write for those 2 s (measured: the
#    third node logged nothing between the key's release and the end of the sleep). It now
#    waits at most the same 2 s for a leader key to appear (read every 50 ms from Patroni's
#    own watch-fed copy of the keys), and follows as soon as one does. Only that wait
#    changes: the old primary's own 2-s sleep after releasing the key is left alone.
# Each edit must match exactly one line, or the build fails (edit-line.sh): a Patroni
# release that changed this code needs this file reviewed.
set -eu
. "$(dirname "$0")/edit-line.sh"
pkg=$(python3 -c 'import os, patroni; print(os.path.dirname(patroni.__file__))')
pg="$pkg/postgresql/__init__.py"
ha="$pkg/ha.py"
api="$pkg/api.py"
main="$pkg/__main__.py"
edit_line "$api" \
	"        Thread.__init__(self, target=self.serve_forever)" \
	"        Thread.__init__(self, target=self.serve_forever, kwargs={'poll_interval': 0.05})  # pgha: was 0.5 (Python's default)"
edit_line "$main" \
	"            self.api.shutdown()" \
	"            self.api.shutdown()" \
	"            self.api.server_close()  # pgha: refuse connections instead of leaving them hanging"
edit_line "$pg" "STOP_POLLING_INTERVAL = 1" "STOP_POLLING_INTERVAL = 0.05  # pgha: was 1"
# The catch-up sleep is in two places: demote() (a switchover) and shutdown() (docker stop).
for indent in '            ' '                    '; do
	edit_line "$ha" \
		"${indent}time.sleep(1)  # give replicas some more time to catch up" \
		"${indent}time.sleep(0.05)  # pgha: was 1; give replicas some more time to catch up"
done
# Only the replica's sleep in process_unhealthy_cluster(); demote()'s own is left alone.
edit_line "$ha" \
	"                time.sleep(2)  # Give a time to somebody to take the leader lock" \
	"                _pgha_wait_for_leader(self.dcs, 2)  # pgha: was time.sleep(2); Give a time to somebody to take the leader lock"
cat >> "$ha" <<'PY'


def _pgha_wait_for_leader(dcs: AbstractDCS, timeout: float) -> None:
    """pgha: wait up to *timeout* seconds for a leader key, instead of sleeping all of it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if dcs.get_cluster().leader:
                return
        except Exception:
            pass  # the wait was a sleep: a DCS error is left to the next loop
        time.sleep(0.05)
PY
# Refresh the byte code Debian compiled at install time.
python3 -m compileall -q -f "$pg" "$ha" "$api" "$main"
python3 -c 'import patroni.postgresql, patroni.ha as ha; assert callable(ha._pgha_wait_for_leader)'  # postgresql first: its import order
echo "pgha: Patroni's fixed waits shortened (REST API poll 0.05 s and closed on shutdown, STOP_POLLING_INTERVAL 0.05 s, catch-up sleep 0.05 s, a switchover's follower waits for the new leader instead of 2 s)"
