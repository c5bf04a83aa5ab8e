#!/bin/sh
# Shell snooping for host secrets and processes: everything must be absent or denied.
for p in /etc/shadow /root /home /work /work/main /etc/proctor /root/.ssh; do
    if cat "$p" >/dev/null 2>&1 || ls "$p" >/dev/null 2>&1; then echo "$p VISIBLE"; else echo "$p denied"; fi
done
ls /proc | grep -c '^[0-9]' | sed 's/^/visible pids /'
