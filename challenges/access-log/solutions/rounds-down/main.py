# Flawed on purpose: truncates the error rate to 2 decimals instead of rounding half up.
import re
import sys

LINE = re.compile(rb"[ \t]*(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)[ \t]+(/[\x21-\x7e]{0,2047})"
                  rb"[ \t]+([1-5][0-9][0-9])[ \t]+([0-9]{1,9})[ \t]*")
BLANK = re.compile(rb"[ \t]*")
ID_SEGMENT = re.compile(rb"(?<=/)[0-9]+(?=/|$)")


def normalise(path):
    q = path.find(b"?")
    if q >= 0:
        path = path[:q]
    if len(path) > 1 and path.endswith(b"/"):
        path = path[:-1]
    return ID_SEGMENT.sub(b":id", path)


def main():
    groups = {}
    cache = {}
    total = 0
    skipped = 0
    match = LINE.fullmatch
    for line in sys.stdin.buffer.read().split(b"\n"):
        if line.endswith(b"\r"):
            line = line[:-1]
        m = match(line)
        if m is None:
            if not BLANK.fullmatch(line):
                skipped += 1
            continue
        method, path, status, lat = m.groups()
        total += 1
        norm = cache.get(path)
        if norm is None:
            norm = normalise(path)
            cache[path] = norm
        key = (norm, method)
        g = groups.get(key)
        if g is None:
            g = [0, []]
            groups[key] = g
        if status[0] == 53:  # b"5"
            g[0] += 1
        g[1].append(int(lat))
    out = []
    for key in sorted(groups):
        errors, lats = groups[key]
        n = len(lats)
        lats.sort()
        rank = (95 * n + 99) // 100
        hundredths = (10000 * errors) // n
        out.append("%s %s %d %d.%02d %d" % (key[1].decode(), key[0].decode(), n,
                                            hundredths // 100, hundredths % 100, lats[rank - 1]))
    out.append("total %d skipped %d" % (total, skipped))
    sys.stdout.write("\n".join(out) + "\n")


main()
