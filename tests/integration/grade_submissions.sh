# proctor grade on real submissions through the real sandbox: correct programs, a build failure,
# symlinks to host files, an output flood and non-UTF-8 output.
. "$(dirname "$0")/lib.sh"
need_sandbox

# A correct python submission: graded, 100%, report valid against the schema.
files() { printf 'import sys\nfor l in sys.stdin:\n    sys.stdout.write(l.upper())\n' > main.py; }
repo=$(mkrepo py-good)
grade "$PACK" "$repo" -o "$T/py.json"
[ "$RC" -eq 0 ] || fail "python good: exit $RC"
cp "$T/py.json" "$T/out.json"
check 'r["status"] == "graded" and r["error"] is None' "python good: graded"
check 'r["submission"]["runtime"] == "python" and len(r["submission"]["commit"]) == 40'
check 'r["submission"]["author"].startswith("Cand") and r["submission"]["ref"].endswith("main")'
check 'r["build"]["verdict"] == "OK"' "python good: build OK"
check '[t["verdict"] for t in r["tests"]] == ["AC", "AC", "AC"]' "python good: all AC"
check 'r["score"] == {"earned": 10, "max": 10, "percent": 100.0}' "python good: score"
check 'all(k in r["timings"] for k in ("fetch_ms", "build_ms", "tests_ms", "total_ms"))'
check 'r["environment"]["isolation"].get("userns") is True' "isolation reported"
grep -q "^build: ok" "$T/err.txt" || fail "progress line for the build"
"$PROCTOR" report "$T/py.json" --format markdown 2>"$T/err.txt" && fail "report should exit 2"
grep -q "not built yet" "$T/err.txt" || fail "proctor report: message"

# The work dir is read-only while tests run: a program that manages to write to /box prints
# nothing useful; one that is refused does the task.
files() {
    cat > main.py <<'PY'
import sys
try:
    open("/box/planted", "w").write("x")
    sys.stdout.write("wrote into /box\n")
except OSError:
    sys.stdout.write(sys.stdin.read().upper())
PY
}
repo=$(mkrepo readonly-box)
grade "$PACK" "$repo"
check 'r["score"]["percent"] == 100.0' "work dir must be read-only during tests"

# A C program that does not compile: graded, build failed with its log, every test SKIP.
files() { printf 'int main(void) { return nope; }\n' > main.c; }
repo=$(mkrepo c-broken)
grade "$PACK" "$repo"
[ "$RC" -eq 0 ] || fail "c broken: exit $RC, want 0 (graded)"
check 'r["status"] == "graded" and r["build"]["verdict"] != "OK"' "c broken: build failed"
check '"nope" in r["build"]["log"]' "c broken: compiler message in the build log"
check 'all(t["verdict"] == "SKIP" and t["points"] == 0 for t in r["tests"])' "c broken: SKIP"
check 'r["score"]["percent"] == 0 and r["score"]["max"] == 10'

# A correct C program built with the default rule.
files() { cp "$PACK/solutions/c/main.c" main.c; }
repo=$(mkrepo c-good)
grade "$PACK" "$repo"
[ "$RC" -eq 0 ] || fail "c good: exit $RC"
check 'r["submission"]["runtime"] == "c" and r["score"]["percent"] == 100.0' "c good: 100%"

# A C program with its own Makefile (which must build /box/main).
files() {
    cp "$PACK/solutions/c/main.c" upper.c
    printf 'main: upper.c\n\t$(CC) -O2 -o main upper.c\n' > Makefile
}
repo=$(mkrepo c-make)
grade "$PACK" "$repo"
check 'r["submission"]["runtime"] == "c" and r["score"]["percent"] == 100.0' "c Makefile: 100%"
check '"upper.c" in r["build"]["log"]' "c Makefile: make's output in the build log"

# node, and go when the host has it; proctor.json picks the runtime over detection.
files() {
    printf 'process.stdout.write(require("fs").readFileSync(0, "utf8").toUpperCase());\n' > main.js
    printf 'print("never run")\n' > main.py
    printf '{"runtime": "node"}\n' > proctor.json
}
repo=$(mkrepo node)
grade "$PACK" "$repo"
check 'r["submission"]["runtime"] == "node" and r["score"]["percent"] == 100.0' "node: 100%"
if [ -x /usr/bin/go ] || [ -x /usr/lib/go/bin/go ]; then
    files() {
        printf 'module upper\n\ngo 1.19\n' > go.mod
        printf 'package main\n\nimport (\n\t"io"\n\t"os"\n\t"strings"\n)\n\n' > main.go
        printf 'func main() {\n\tb, _ := io.ReadAll(os.Stdin)\n' >> main.go
        printf '\tos.Stdout.WriteString(strings.ToUpper(string(b)))\n}\n' >> main.go
    }
    repo=$(mkrepo go)
    grade "$PACK" "$repo"
    check 'r["submission"]["runtime"] == "go" and r["score"]["percent"] == 100.0' "go: 100%"
fi

# Submission files that are symlinks to host secrets: nothing of them reaches the report.
files() { ln -s /etc/shadow main.py; ln -s /etc/passwd notes.txt; }
repo=$(mkrepo symlinks)
grade "$PACK" "$repo"
[ "$RC" -eq 0 ] || [ "$RC" -eq 1 ] || fail "symlinks: exit $RC"
check '"root:" not in raw.decode()' "symlinks: no host file content in the report"
check 'r["score"]["percent"] == 0' "symlinks: nothing passes"
files() { ln -s /etc/shadow main.c; }
repo=$(mkrepo symlink-c)
grade "$PACK" "$repo"
check '"root:" not in raw.decode() and r["score"]["percent"] == 0' "symlinked main.c"

# A program that floods stdout: OLE, and the report stays small.
files() {
    printf '#include <stdio.h>\n#include <string.h>\nint main(void) {\n' > main.c
    printf '    static char b[65536]; memset(b, 120, sizeof(b));\n' >> main.c
    printf '    for (;;) fwrite(b, 1, sizeof(b), stdout);\n}\n' >> main.c
}
repo=$(mkrepo flood)
grade "$PACK" "$repo"
[ "$RC" -eq 0 ] || fail "flood: exit $RC"
check 'r["status"] == "graded" and all(t["verdict"] == "OLE" for t in r["tests"][:2])' "flood: OLE"
size=$(stat -c %s "$T/out.json")
[ "$size" -lt 100000 ] || fail "flood: report is $size bytes"
# Python ignores SIGXFSZ and sees EFBIG: a failing verdict all the same, and a small report.
files() { printf 'import sys\nwhile True:\n    sys.stdout.write("x" * 65536)\n' > main.py; }
repo=$(mkrepo flood-py)
grade "$PACK" "$repo"
[ "$RC" -eq 0 ] || fail "python flood: exit $RC"
check 'r["tests"][0]["verdict"] in ("OLE", "RE") and r["score"]["percent"] == 0' "python flood"
size=$(stat -c %s "$T/out.json")
[ "$size" -lt 100000 ] || fail "python flood: report is $size bytes"

# A program printing bytes that are not UTF-8: the report is valid UTF-8 all the same.
files() { printf 'import sys\nsys.stdout.buffer.write(b"\\xff\\xfe\\xc3(HELLO\\x00\\n" * 10)\n' > main.py; }
repo=$(mkrepo binary)
grade "$PACK" "$repo"
[ "$RC" -eq 0 ] || fail "non-utf8: exit $RC"
check 'r["tests"][0]["verdict"] == "WA"' "non-utf8: WA"
echo "grade_submissions: ok"
