# Reference solution in Python: a dict of [balance, last] per key, exact integer milli-tokens.
import sys


def main():
    data = sys.stdin.buffer.read().split(b"\n")
    cap, rate = map(int, data[0].split())
    full = cap * 1000
    buckets = {}
    out = []
    append = out.append
    for line in data[1:]:
        parts = line.split()
        if len(parts) != 2:
            continue
        t = int(parts[0])
        key = parts[1]
        b = buckets.get(key)
        if b is None:
            b = [full, t]
            buckets[key] = b
        bal = b[0] + (t - b[1]) * rate
        if bal > full:
            bal = full
        b[1] = t
        if bal >= 1000:
            b[0] = bal - 1000
            append("ALLOW")
        else:
            b[0] = bal
            append("DENY")
    sys.stdout.write("\n".join(out))
    if out:
        sys.stdout.write("\n")


main()
