# Shared helpers of the `proctor grade` integration tests (sourced by each test script).
set -euo pipefail
: "${PROCTOR:?PROCTOR must name the built binary}"
: "${PR_SOURCE_DIR:?}"
PY=/usr/bin/python3
PACK="$PR_SOURCE_DIR/tests/fixtures/packs/echo"
T=$(mktemp -d /tmp/pr-integ-XXXXXX)
# $T is mode 0700: job directories below it must still work (the sandbox opens bind sources
# with proctor's own access).
trap 'rm -rf "$T"' EXIT
export XDG_CACHE_HOME="$T/cache"
export TMPDIR="$T"

fail() {
    echo "FAIL: $*" >&2
    if [ -f "$T/err.txt" ]; then
        echo "--- stderr of the last proctor run:" >&2
        tail -n 30 "$T/err.txt" >&2
    fi
    exit 1
}

# Skips (77) when this host cannot build a sandbox at all.
need_sandbox() {
    if ! "$PROCTOR" sandbox -- /bin/true >/dev/null 2>&1; then
        echo "SKIP: proctor sandbox cannot run /bin/true here"
        exit 77
    fi
    local msg
    msg=$("$PROCTOR" challenge list "$(dirname "$PACK")" 2>&1 || true)
    if echo "$msg" | grep -q "not built yet"; then
        echo "SKIP: the echo pack's kind is not built yet: $msg"
        exit 77
    fi
}

# mkrepo NAME: makes $T/NAME a git repository holding the files of the current shell function
# `files` (run inside the directory), committed on branch main.
mkrepo() {
    local d="$T/$1"
    mkdir -p "$d"
    (cd "$d" && git init -q -b main && files &&
        git add -A && git -c user.name=Cand -c user.email=cand@example.com \
            commit -q -m submission)
    echo "$d"
}

# grade ARGS...: runs proctor grade; the report lands in $T/out.json, stderr in $T/err.txt, the
# exit status in RC.
grade() {
    set +e
    "$PROCTOR" grade "$@" >"$T/out.json" 2>"$T/err.txt"
    RC=$?
    set -e
}

# check 'PYTHON EXPRESSION over r (the report)' [what]: asserts on the last report. The report
# must be strict JSON whose bytes are valid UTF-8.
check() {
    "$PY" - "$T/out.json" "$1" <<'PYEOF' || fail "${2:-$1}"
import json, sys
raw = open(sys.argv[1], "rb").read()
raw.decode("utf-8", errors="strict")
r = json.loads(raw)
ok = eval(sys.argv[2], {"r": r, "len": len, "all": all, "any": any, "raw": raw})
if not ok:
    print(json.dumps(r, indent=1)[:3000], file=sys.stderr)
    sys.exit(1)
PYEOF
}
