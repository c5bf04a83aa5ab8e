# Flawed on purpose: keeps the balance as a float number of tokens and refills by
# (T-L)/1000*R. Rounding drifts, so a bucket that should hold exactly one token after many
# small refills holds 0.9999999 and the request is wrongly denied.
import sys


def main():
    data = sys.stdin.buffer.read().split(b"\n")
    cap, rate = map(int, data[0].split())
    buckets = {}
    out = []
    for line in data[1:]:
        parts = line.split()
        if len(parts) != 2:
            continue
        t = int(parts[0])
        key = parts[1]
        b = buckets.get(key)
        if b is None:
            b = [float(cap), t]
            buckets[key] = b
        b[0] = min(float(cap), b[0] + (t - b[1]) / 1000.0 * rate)
        b[1] = t
        if b[0] >= 1.0:
            b[0] -= 1.0
            out.append("ALLOW")
        else:
            out.append("DENY")
    sys.stdout.write("".join(s + "\n" for s in out))


main()
