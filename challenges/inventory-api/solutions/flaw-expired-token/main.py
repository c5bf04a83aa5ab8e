"""Reference solution of inventory-api: Python standard library only (http.server)."""
import base64
import hashlib
import hmac
import json
import os
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SECRET = os.environ.get("JWT_SECRET", "").encode()
PORT = int(os.environ.get("PORT", "8080"))
ROLES = {"viewer": 0, "clerk": 1, "admin": 2}
SKU_RE = re.compile(r"^[A-Z0-9-]{1,32}$")

LOCK = threading.Lock()
ITEMS = {}  # id -> item
ORDER = []  # ids in creation order (deleted ids stay, skipped when listing)
POS = {}    # id -> index in ORDER
SKUS = {}   # sku -> id
IDEM = {}   # idempotency key -> (status, body bytes)


class ApiError(Exception):
    def __init__(self, status, message, field=None):
        super().__init__(message)
        self.status = status
        self.body = {"error": message}
        if field is not None:
            self.body["field"] = field


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def check_token(header):
    if not header or not header.startswith("Bearer "):
        raise ApiError(401, "missing bearer token")
    parts = header[7:].strip().split(".")
    if len(parts) != 3:
        raise ApiError(401, "malformed token")
    try:
        head = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        sig = b64url_decode(parts[2])
    except (ValueError, TypeError):
        raise ApiError(401, "malformed token")
    if not isinstance(head, dict) or head.get("alg") != "HS256" or not isinstance(claims, dict):
        raise ApiError(401, "unsupported token")
    want = hmac.new(SECRET, (parts[0] + "." + parts[1]).encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(want, sig):
        raise ApiError(401, "bad signature")
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):  # flaw: expiry never checked
        raise ApiError(401, "token expired")
    role = claims.get("role")
    if role not in ROLES or not isinstance(claims.get("sub"), str):
        raise ApiError(401, "bad claims")
    return role


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def validate_item(body, partial):
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object")
    if partial and "sku" in body:
        raise ApiError(422, "sku cannot change", "sku")
    if not partial:
        sku = body.get("sku")
        if not isinstance(sku, str) or not SKU_RE.match(sku):
            raise ApiError(422, "sku must be 1..32 of A-Z0-9-", "sku")
    if not partial or "name" in body:
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 200:
            raise ApiError(422, "name must be 1..200 characters", "name")
    for f in ("price_cents", "quantity"):
        if not partial or f in body:
            v = body.get(f)
            if not is_int(v) or v < 0:
                raise ApiError(422, f + " must be an integer >= 0", f)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "inventory/1"
    # Headers and body leave in two writes: without TCP_NODELAY, Nagle plus the client's
    # delayed ACK add about 40 ms to every keep-alive response.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def send_json(self, status, obj, headers=None):
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if status != 204:
            self.wfile.write(data)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        try:
            return json.loads(raw)
        except ValueError:
            return ValueError

    def handle_any(self, method):
        url = urlsplit(self.path)
        path = url.path
        try:
            body = self.read_body() if method in ("POST", "PATCH", "PUT") else None
            if path == "/healthz":
                if method != "GET":
                    raise ApiError(405, "method not allowed")
                return self.send_json(200, {"status": "ok"})
            segs = path.strip("/").split("/")
            if segs[0] == "items" and len(segs) == 1:
                allowed = {"GET": 0, "POST": 2}
            elif segs[0] == "items" and len(segs) == 2 and segs[1]:
                allowed = {"GET": 0, "PATCH": 2, "DELETE": 2}
            elif segs == ["orders"]:
                allowed = {"POST": 1}
            else:
                raise ApiError(404, "not found")
            if method not in allowed:
                raise ApiError(405, "method not allowed")
            role = check_token(self.headers.get("Authorization"))
            if ROLES[role] < allowed[method]:
                raise ApiError(403, "role too low")
            if body is ValueError:
                raise ApiError(400, "body must be a JSON object")
            if segs[0] == "orders":
                return self.create_order(body)
            if len(segs) == 1:
                if method == "POST":
                    return self.create_item(body)
                return self.list_items(parse_qs(url.query, keep_blank_values=True))
            item_id = segs[1]
            with LOCK:
                item = ITEMS.get(item_id)
                if item is None:
                    raise ApiError(404, "no such item")
                if method == "GET":
                    out = dict(item)
                elif method == "DELETE":
                    del ITEMS[item_id]
                    del SKUS[item["sku"]]
                    return self.send_json(204, b"")
                else:
                    validate_item(body, True)
                    for f in ("name", "price_cents", "quantity"):
                        if f in body:
                            item[f] = body[f]
                    out = dict(item)
            return self.send_json(200, out)
        except ApiError as e:
            return self.send_json(e.status, e.body)

    def create_item(self, body):
        validate_item(body, False)
        with LOCK:
            if body["sku"] in SKUS:
                raise ApiError(409, "sku exists")
            item = {"id": uuid.uuid4().hex, "sku": body["sku"], "name": body["name"],
                    "price_cents": body["price_cents"], "quantity": body["quantity"]}
            ITEMS[item["id"]] = item
            SKUS[item["sku"]] = item["id"]
            POS[item["id"]] = len(ORDER)
            ORDER.append(item["id"])
            out = dict(item)
        self.send_json(201, out, {"Location": "/items/" + out["id"]})

    def list_items(self, q):
        limit = 20
        if "limit" in q:
            v = q["limit"][0]
            if not re.fullmatch(r"[0-9]{1,4}", v) or not 1 <= int(v) <= 100:
                raise ApiError(400, "limit must be 1..100")
            limit = int(v)
        start = 0
        if "cursor" in q:
            c = q["cursor"][0]
            if not re.fullmatch(r"[0-9a-f]{32}", c) or c not in POS:
                raise ApiError(400, "bad cursor")
            start = POS[c] + 1
        items = []
        next_cursor = None
        with LOCK:
            i = start
            while i < len(ORDER):
                it = ITEMS.get(ORDER[i])
                i += 1
                if it is None:
                    continue
                items.append(dict(it))
                if len(items) == limit:
                    break
            if len(items) == limit and any(ORDER[k] in ITEMS for k in range(i, len(ORDER))):
                next_cursor = items[-1]["id"]
        self.send_json(200, {"items": items, "next_cursor": next_cursor})

    def create_order(self, body):
        key = self.headers.get("Idempotency-Key")
        if key is None or not 1 <= len(key) <= 64:
            raise ApiError(400, "Idempotency-Key must be 1..64 characters")
        with LOCK:
            if key in IDEM:
                status, data = IDEM[key]
                return self.send_json(status, data)
            try:
                status, out = self.order_locked(body)
            except ApiError as e:
                status, out = e.status, e.body
            data = json.dumps(out).encode()
            IDEM[key] = (status, data)
        self.send_json(status, data)

    @staticmethod
    def order_locked(body):
        if not isinstance(body, dict):
            raise ApiError(400, "body must be a JSON object")
        sku = body.get("sku")
        if not isinstance(sku, str) or not SKU_RE.match(sku):
            raise ApiError(422, "sku must be 1..32 of A-Z0-9-", "sku")
        qty = body.get("quantity")
        if not is_int(qty) or qty < 1:
            raise ApiError(422, "quantity must be an integer >= 1", "quantity")
        item_id = SKUS.get(sku)
        if item_id is None:
            raise ApiError(404, "unknown sku")
        item = ITEMS[item_id]
        if item["quantity"] < qty:
            raise ApiError(409, "not enough stock")
        item["quantity"] -= qty
        return 201, {"id": uuid.uuid4().hex, "sku": sku, "quantity": qty}

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_DELETE(self):
        self.handle_any("DELETE")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


if __name__ == "__main__":
    Server(("127.0.0.1", PORT), Handler).serve_forever()
