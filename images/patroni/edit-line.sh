# Sourced by tune-patroni.sh and fix-etcd3-errors.sh.
# edit_line FILE OLD NEW...: replaces the one line of FILE that reads OLD, indentation
# included, with the NEW lines. Unless exactly one line reads OLD it fails, and the image
# build with it: a Patroni whose code moved needs the edit reviewed, not a silent miss.
edit_line() {
	python3 - "$@" <<'PY'
import sys
path, old, new = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(path) as f:
    lines = f.read().split("\n")
hits = [i for i, line in enumerate(lines) if line == old]
if len(hits) != 1:
    sys.exit(f"pgha: {path}: {len(hits)} lines read {old.strip()!r}, want exactly 1: review this edit for this Patroni")
lines[hits[0]:hits[0] + 1] = new
with open(path, "w") as f:
    f.write("\n".join(lines))
PY
}
