#!/bin/sh
# Shortens three fixed waits in Patroni's planned hand-overs (docker stop, switchover).
# Measured on this machine: the first two put about 0.9 s between PostgreSQL's clean
# shutdown and the release of the leader key; the third, 2 s before a strict-mode
# switchover's synchronous standby followed the new primary.
#  - STOP_POLLING_INTERVAL: after signalling the postmaster to stop, Patroni reads
#    pg_controldata every STOP_POLLING_INTERVAL seconds (1) to learn that the shutdown
#    checkpoint is written; 0.1 notices it within a tenth of a second.
#  - "give replicas some more time to catch up": a fixed 1 s sleep before Patroni asks the
#    replicas whether they received the shutdown checkpoint. The question itself
#    (is_failover_possible with the checkpoint's LSN) is what keeps the hand-over safe: when
#    no replica has it yet, the key is kept and released only after the postmaster exits,
#    exactly as before. 0.1 s is enough on one host's bridge network.
#  - "Give a time to somebody to take the leader lock": during a switchover (a failover key
#    is set) a replica that is not the healthiest node sleeps 2 s before it follows whoever
#    holds the leader key then. In strict synchronous mode that replica is the only possible
#    synchronous standby, so the new primary took no write for those 2 s (measured: the
#    third node logged nothing between the key's release and the end of the sleep). It now
#    waits at most the same 2 s for a leader key to appear (read every 50 ms from Patroni's
#    own watch-fed copy of the keys), and follows as soon as one does. Only that wait
#    changes: the old primary's own 2-s sleep after releasing the key is left alone.
# Each edit must match exactly once per expected place, or the build fails: a Patroni
# release that changed this code needs this file reviewed.
set -eu
pkg=$(python3 -c 'import os, patroni; print(os.path.dirname(patroni.__file__))')
pg="$pkg/postgresql/__init__.py"
ha="$pkg/ha.py"
[ "$(grep -c '^STOP_POLLING_INTERVAL = 1$' "$pg")" = 1 ]
sed -i 's/^STOP_POLLING_INTERVAL = 1$/STOP_POLLING_INTERVAL = 0.1  # pgha: was 1/' "$pg"
[ "$(grep -c 'time.sleep(1)  # give replicas some more time to catch up' "$ha")" = 2 ]
sed -i 's/time.sleep(1)  # give replicas some more time to catch up/time.sleep(0.1)  # pgha: was 1; give replicas some more time to catch up/' "$ha"
old='                time.sleep(2)  # Give a time to somebody to take the leader lock'
[ "$(grep -c "^$old\$" "$ha")" = 1 ]
sed -i "s/^$old\$/                _pgha_wait_for_leader(self.dcs, 2)  # pgha: was time.sleep(2); Give a time to somebody to take the leader lock/" "$ha"
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
python3 -m compileall -q -f "$pg" "$ha"
grep -q 'STOP_POLLING_INTERVAL = 0.1' "$pg"
python3 -c 'import patroni.postgresql, patroni.ha as ha; assert callable(ha._pgha_wait_for_leader)'  # postgresql first: its import order
echo "pgha: Patroni's fixed waits shortened (STOP_POLLING_INTERVAL 0.1 s, catch-up sleep 0.1 s, a switchover's follower waits for the new leader instead of 2 s)"
