# Python looking for host secrets and processes; every host path must be absent or denied.
import os

for p in ("/etc/shadow", "/root", "/home", "/work", "/work/main", "/etc/proctor", "/run/secrets"):
    try:
        if os.path.isdir(p):
            print(p, "LISTED", len(os.listdir(p)))
        else:
            with open(p, "rb") as f:
                f.read(1)
            print(p, "READ")
    except OSError as e:
        print(p, "ERR", type(e).__name__)
pids = [d for d in os.listdir("/proc") if d.isdigit()]
print("visible pids", len(pids))
