# A build is the one step where the work tree is writable. A submission whose build writes 2 GiB
# (64 files of 32 MiB, each under the per-file limit) must be stopped by the job's own tmpfs
# (size and inode caps) or by the build's memory cgroup (tmpfs pages are charged to it), never
# by filling the host's disk; without those caps this build would succeed. Afterwards no job
# mount is left behind.
. "$(dirname "$0")/lib.sh"
need_sandbox
if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: job directories are tmpfs mounts only when proctor may mount"
    exit 77
fi

files() {
    cp "$PACK/solutions/c/main.c" upper.c
    cat > Makefile <<'MK'
main: upper.c
	i=0; while [ $$i -lt 64 ]; do head -c 33554432 /dev/zero > fill$$i || exit 1; i=$$((i+1)); done
	rm -f fill*
	$(CC) -O2 -o main upper.c
MK
}
repo=$(mkrepo disk-fill)
grade "$PACK" "$repo" --work "$T/work"
[ "$RC" -eq 0 ] || fail "disk fill: exit $RC, want 0 (graded)"
check 'r["status"] == "graded"' "disk fill: graded"
check 'r["build"]["verdict"] in ("MLE", "RE", "OLE")' "disk fill: the build must be stopped"
check 'all(t["verdict"] == "SKIP" for t in r["tests"])' "disk fill: tests skipped"
if grep -q " $T/work/" /proc/self/mountinfo; then
    fail "a job mount was left behind under $T/work"
fi
[ -z "$(ls -A "$T/work" 2>/dev/null)" ] || fail "job directory left behind: $(ls -A "$T/work")"

# The same build with a small output passes: the cap is not in the way of honest work.
files() {
    cp "$PACK/solutions/c/main.c" upper.c
    printf 'main: upper.c\n\thead -c 1048576 /dev/zero > scratch.bin\n\t$(CC) -O2 -o main upper.c\n' > Makefile
}
repo=$(mkrepo small-write)
grade "$PACK" "$repo" --work "$T/work"
check 'r["build"]["verdict"] == "OK" and r["score"]["percent"] == 100.0' "small build write: 100%"
echo "grade_disk_fill: ok"
