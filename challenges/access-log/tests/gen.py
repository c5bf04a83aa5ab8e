# Deterministic access-log generator (Python standard library only).
# Usage: gen.py MODE SEED LINES
#   MODE api:  about 40 endpoints with numeric ids, query strings, trailing slashes, a skewed
#              latency distribution, 1 in 100 lines malformed, some CRLF and tab separators.
#   MODE wide: like api, but most paths carry a random non-numeric slug, so there are tens of
#              thousands of distinct endpoints.
# Writes the log on stdout. Same arguments, same bytes, on every Python 3.
import random
import sys

TEMPLATES = [
    ("GET", "/users/{id}"), ("PUT", "/users/{id}"), ("DELETE", "/users/{id}"),
    ("GET", "/users"), ("POST", "/users"), ("GET", "/users/{id}/orders"),
    ("GET", "/orders/{id}/items/{id}"), ("POST", "/orders/{id}/items"),
    ("PATCH", "/orders/{id}"), ("GET", "/health"), ("HEAD", "/health"),
    ("GET", "/v2/search?q={slug}"), ("GET", "/static/app.js"), ("OPTIONS", "/users"),
    ("GET", "/reports/{id}/"), ("GET", "/"), ("POST", "/login"), ("GET", "/a-b/{id}"),
    ("GET", "/A/{id}"), ("GET", "/a/{id}"),
]
STATUSES = [200] * 30 + [201] * 5 + [204] * 3 + [301, 304, 400, 401, 403] + [404] * 4 + [
    429, 499, 500, 500, 502, 503, 504, 599]
BAD = ["get /users 200 5", "GET users 200 5", "GET /users 2000 5", "GET /users 200 -5",
       "GET /users 200 1.5", "GET /users 200", "GET /users 200 5 extra", "GET /users 600 5",
       "GET /users 099 5", "GET /users 200 1234567890", "POST /caf\xe9 200 5", "just garbage",
       "GET /users OK 5"]
SLUG = "abcdefghijklmnopqrstuvwxyz"


def main():
    mode = sys.argv[1]
    rng = random.Random(int(sys.argv[2]))
    n = int(sys.argv[3])
    randrange = rng.randrange
    out = []
    for _ in range(n):
        r = randrange(100)
        if r == 0:
            out.append(rng.choice(BAD))
            continue
        method, tpl = TEMPLATES[randrange(len(TEMPLATES))]
        path = tpl
        while "{id}" in path:
            path = path.replace("{id}", str(randrange(1, 100000)), 1)
        if "{slug}" in path:
            path = path.replace("{slug}", "".join(rng.choice(SLUG) for _ in range(5)))
        if mode == "wide" and randrange(4) != 0:
            path = "/p/" + "".join(rng.choice(SLUG) for _ in range(3)) + path
        if r < 3:
            path += "/"
        status = STATUSES[randrange(len(STATUSES))]
        lat = randrange(1, 50) if randrange(10) else randrange(50, 5000)
        sep = "\t" if r == 3 else " "
        line = "%s%s%s%s%d%s%d" % (method, sep, path, sep, status, sep, lat)
        if r == 4:
            line += "\r"
        out.append(line)
    sys.stdout.write("\n".join(out) + "\n")


main()
