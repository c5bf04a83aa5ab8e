# proctor grade: failures of the stages before the build, and usage errors.
. "$(dirname "$0")/lib.sh"
need_sandbox

# A missing repository: exit 1, a complete report with status error at stage fetch.
grade "$PACK" "$T/no-such-repo"
[ "$RC" -eq 1 ] || fail "missing repo: exit $RC, want 1"
check 'r["status"] == "error" and r["error"]["stage"] == "fetch"' "missing repo: stage fetch"
check '"no-such-repo" in r["error"]["message"]' "missing repo: message names the repository"
check 'len(r["tests"]) == 3 and all(t["verdict"] == "SKIP" for t in r["tests"])'
check 'r["challenge"]["id"] == "echo" and len(r["challenge"]["digest"]) == 64'
check 'r["score"]["percent"] == 0 and r["timings"]["total_ms"] >= 0'

# An unknown ref of an existing repository.
files() { printf 'import sys\nsys.stdout.write(sys.stdin.read().upper())\n' > main.py; }
repo=$(mkrepo good)
grade "$PACK" "$repo" --ref no-such-branch
[ "$RC" -eq 1 ] || fail "unknown ref: exit $RC, want 1"
check 'r["status"] == "error" and r["error"]["stage"] == "fetch"' "unknown ref: stage fetch"
check '"no-such-branch" in r["error"]["message"]' "unknown ref: message names the ref"

# Credentials in the repository URL never reach the report.
grade "$PACK" "https://alice:s3cret@127.0.0.1:9/x.git"
[ "$RC" -eq 1 ] || fail "credential url: exit $RC"
check '"s3cret" not in raw.decode() and "alice" not in r["submission"]["repo"]' "credentials stripped"

# A runtime the challenge does not allow (and one that does not exist).
grade "$PACK" "$repo" --runtime cobol
[ "$RC" -eq 1 ] || fail "unknown runtime: exit $RC"
check 'r["error"]["stage"] == "runtime" and "cobol" in r["error"]["message"]'

# A malformed manifest: exit 2, the message names the file and the field.
mkdir -p "$T/badpack"
cp -r "$PACK/." "$T/badpack/"
sed -i 's/"points": 3/"points": "three"/' "$T/badpack/challenge.json"
grade "$T/badpack" "$repo"
[ "$RC" -eq 2 ] || fail "bad manifest: exit $RC, want 2"
grep -q "badpack/challenge.json: tests\[1\].points: expected a number" "$T/err.txt" ||
    fail "bad manifest: message"
grade "$T/no-such-pack" "$repo"
[ "$RC" -eq 2 ] || fail "missing pack: exit $RC, want 2"
grep -q "no-such-pack" "$T/err.txt" || fail "missing pack: message"

# Usage errors and the reviewer-facing reports that are not built yet.
grade "$PACK"
[ "$RC" -eq 2 ] || fail "one argument: exit $RC"
grade "$PACK" "$repo" --html "$T/r.html"
[ "$RC" -eq 2 ] || fail "--html: exit $RC"
grep -q "reviewer-facing reports are not built yet" "$T/err.txt" || fail "--html message"
grade "$PACK" "$repo" --parallel 0
[ "$RC" -eq 2 ] || fail "--parallel 0: exit $RC"
"$PROCTOR" grade --help | grep -q "examples:" || fail "grade --help teaches"

set +e
"$PROCTOR" report "$T/missing.json" --format html 2>"$T/err.txt"
RC=$?
set -e
[ "$RC" -eq 2 ] || fail "report missing file: exit $RC"
grep -q "$T/missing.json" "$T/err.txt" || fail "report: message names the file"
set +e
"$PROCTOR" report "$T/missing.json" --format pdf 2>"$T/err.txt"
RC=$?
set -e
[ "$RC" -eq 2 ] || fail "report bad format: exit $RC"
echo "grade_errors: ok"
