# Checker for the access-log pack (trusted pack code, run in the sandbox).
# Reads /check/expected and /check/output, compares them line by line as whitespace-separated
# tokens, and prints one JSON line: {"verdict": "AC"|"WA", "score": 0..1, "message": "..."}.
# The score is the share of expected lines that the output has (as a multiset), divided by the
# larger of the two line counts, so extra or missing lines cost points; out-of-order lines get
# at most 0.5.
import collections
import json


def lines(path):
    with open(path, "rb") as f:
        data = f.read(64 * 1024 * 1024)
    return [tuple(l.split()) for l in data.split(b"\n") if l.strip()]


def main():
    exp = lines("/check/expected")
    got = lines("/check/output")
    if exp == got:
        print(json.dumps({"verdict": "AC", "score": 1.0, "message": "all %d lines match" % len(exp)}))
        return
    common = collections.Counter(exp) & collections.Counter(got)
    matched = sum(common.values())
    score = matched / max(len(exp), len(got), 1)
    if matched == len(exp) == len(got):
        score = 0.5
        msg = "all lines present but in the wrong order"
    else:
        first = next((i for i, (a, b) in enumerate(zip(exp, got)) if a != b), min(len(exp), len(got)))
        msg = "%d of %d expected lines found; first difference at line %d" % (matched, len(exp), first + 1)
    print(json.dumps({"verdict": "WA", "score": round(min(score, 0.99), 4), "message": msg}))


main()
