# proctor challenge check: every reference solution of the echo pack lands in its range; a
# solution outside its range fails the check; a malformed pack exits 2.
. "$(dirname "$0")/lib.sh"
need_sandbox

set +e
"$PROCTOR" challenge check "$PACK" >"$T/out.txt" 2>"$T/err.txt"
RC=$?
set -e
cat "$T/out.txt"
[ "$RC" -eq 0 ] || fail "check of the echo pack: exit $RC"
grep -Eq '^python +100\.0 +100\.\.100 +OK' "$T/out.txt" || fail "python row"
grep -Eq '^wrong +20\.0 +20\.\.20 +OK' "$T/out.txt" || fail "wrong row"

# A pack whose expectation is wrong: the check fails with exit 1 and a FAIL row.
mkdir -p "$T/pack"
cp -r "$PACK/." "$T/pack/"
echo '{"min_percent": 90, "max_percent": 100}' > "$T/pack/solutions/wrong/expect.json"
set +e
"$PROCTOR" challenge check "$T/pack" >"$T/out.txt" 2>"$T/err.txt"
RC=$?
set -e
[ "$RC" -eq 1 ] || fail "wrong expectation: exit $RC, want 1"
grep -Eq '^wrong +20\.0 +90\.\.100 +FAIL' "$T/out.txt" || fail "FAIL row"

# A runtime no runtimes configuration knows: exit 2 naming the field.
sed -i 's/"runtimes": \["c", "python", "node", "go"\]/"runtimes": ["c", "cobol"]/' \
    "$T/pack/challenge.json"
set +e
"$PROCTOR" challenge check "$T/pack" >"$T/out.txt" 2>"$T/err.txt"
RC=$?
set -e
[ "$RC" -eq 2 ] || fail "unknown runtime: exit $RC, want 2"
grep -q 'pack/challenge.json: runtimes\[1\]: expected a runtime' "$T/err.txt" ||
    fail "unknown runtime: message"

# A malformed manifest: exit 2 naming the file and field.
sed -i 's/"kind": "stdio"/"kind": "soap"/' "$T/pack/challenge.json"
set +e
"$PROCTOR" challenge check "$T/pack" >"$T/out.txt" 2>"$T/err.txt"
RC=$?
set -e
[ "$RC" -eq 2 ] || fail "malformed: exit $RC, want 2"
grep -q "pack/challenge.json: kind: expected one of" "$T/err.txt" || fail "malformed: message"
echo "challenge_check: ok"
