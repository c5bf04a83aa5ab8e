# Deterministic input generator for the rate-limiter pack (Python standard library only).
# Usage: gen.py MODE SEED REQUESTS KEYS CAPACITY RATE
#   MODE uniform: keys drawn uniformly; the clock advances 1 ms every 100 requests or so.
#   MODE hot:     half of the requests go to 64 hot keys; the clock advances 0..1 ms per
#                 request and jumps up to 10^9 ms every 1000 requests (T ends near 5*10^11).
#   MODE ticks:   per key, runs of requests spaced 1000/d ms (d divides 1000) that refill
#                 exactly one token at the last request of each run.
#   MODE mixed:   random capacity-sized bursts and idle gaps, including exact refill points.
# Writes the input on stdout. Same arguments, same bytes, on every Python 3.
import random
import sys

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-"


def make_keys(rng, n):
    keys = set()
    while len(keys) < n:
        length = rng.choice((4, 8, 12, 16, 24, 40, 64))
        keys.add("".join(rng.choice(ALPHABET) for _ in range(length)))
    return sorted(keys)


def main():
    mode = sys.argv[1]
    rng = random.Random(int(sys.argv[2]))
    n = int(sys.argv[3])
    nkeys = int(sys.argv[4])
    cap = int(sys.argv[5])
    rate = int(sys.argv[6])
    keys = make_keys(rng, nkeys)
    hot = keys[:64]
    out = ["%d %d" % (cap, rate)]
    t = 0
    randrange = rng.randrange
    if mode == "uniform":
        for _ in range(n):
            if randrange(100) == 0:
                t += 1
            out.append("%d %s" % (t, keys[randrange(nkeys)]))
    elif mode == "hot":
        for i in range(n):
            if i % 1000 == 999:
                t += randrange(1000000000)
            else:
                t += randrange(2)
            if randrange(2):
                k = hot[randrange(len(hot))]
            else:
                k = keys[randrange(nkeys)]
            out.append("%d %s" % (t, k))
    elif mode == "mixed":
        step = max(1, 1000 // max(rate, 1))
        i = 0
        while i < n:
            k = keys[randrange(nkeys)]
            burst = randrange(1, cap + 3)
            for _ in range(min(burst, n - i)):
                out.append("%d %s" % (t, k))
                t += randrange(3)
                i += 1
            t += rng.choice((0, 1, step - 1, step, step + 1, 7 * step, 100000))
    elif mode == "ticks":
        i = 0
        while i < n:
            k = keys[randrange(nkeys)]
            d = rng.choice((2, 4, 5, 8, 10, 20, 25, 40, 50, 100))
            for j in range(d + 1):
                if i == n:
                    break
                out.append("%d %s" % (t, k))
                i += 1
                if j < d:
                    t += 1000 // d
            t += randrange(5)
    else:
        sys.exit("unknown mode " + mode)
    sys.stdout.write("\n".join(out) + "\n")


main()
