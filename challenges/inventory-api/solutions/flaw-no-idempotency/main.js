'use strict';
// Reference solution of inventory-api: Node.js built-in http only.
const http = require('http');
const crypto = require('crypto');

const SECRET = process.env.JWT_SECRET || '';
const PORT = parseInt(process.env.PORT || '8080', 10);
const ROLES = { viewer: 0, clerk: 1, admin: 2 };
const SKU_RE = /^[A-Z0-9-]{1,32}$/;

const items = new Map(); // id -> item
const order = [];        // ids in creation order
const pos = new Map();   // id -> index in order
const skus = new Map();  // sku -> id
const idem = new Map();  // key -> [status, body string]

class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.body = field === undefined ? { error: message } : { error: message, field };
  }
}

function b64urlJson(s) {
  return JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
}

function checkToken(header) {
  if (!header || !header.startsWith('Bearer ')) throw new ApiError(401, 'missing bearer token');
  const parts = header.slice(7).trim().split('.');
  if (parts.length !== 3) throw new ApiError(401, 'malformed token');
  let head, claims;
  try {
    head = b64urlJson(parts[0]);
    claims = b64urlJson(parts[1]);
  } catch (e) {
    throw new ApiError(401, 'malformed token');
  }
  if (!head || typeof head !== 'object' || head.alg !== 'HS256' || !claims || typeof claims !== 'object')
    throw new ApiError(401, 'unsupported token');
  const want = crypto.createHmac('sha256', SECRET).update(parts[0] + '.' + parts[1]).digest();
  const got = Buffer.from(parts[2], 'base64url');
  if (got.length !== want.length || !crypto.timingSafeEqual(got, want))
    throw new ApiError(401, 'bad signature');
  if (typeof claims.exp !== 'number' || claims.exp <= Date.now() / 1000)
    throw new ApiError(401, 'token expired');
  if (!(claims.role in ROLES) || typeof claims.sub !== 'string') throw new ApiError(401, 'bad claims');
  return claims.role;
}

const isInt = (v) => Number.isInteger(v);

function validateItem(body, partial) {
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw new ApiError(400, 'body must be a JSON object');
  if (partial && 'sku' in body) throw new ApiError(422, 'sku cannot change', 'sku');
  if (!partial && (typeof body.sku !== 'string' || !SKU_RE.test(body.sku)))
    throw new ApiError(422, 'sku must be 1..32 of A-Z0-9-', 'sku');
  if (!partial || 'name' in body) {
    if (typeof body.name !== 'string' || body.name.length < 1 || [...body.name].length > 200)
      throw new ApiError(422, 'name must be 1..200 characters', 'name');
  }
  for (const f of ['price_cents', 'quantity']) {
    if (!partial || f in body) {
      if (!isInt(body[f]) || body[f] < 0) throw new ApiError(422, f + ' must be an integer >= 0', f);
    }
  }
}

function send(res, status, obj, headers) {
  if (status === 204) {
    res.writeHead(204, headers || {});
    return res.end();
  }
  const data = typeof obj === 'string' ? obj : JSON.stringify(obj);
  res.writeHead(status, Object.assign({ 'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(data) }, headers || {}));
  res.end(data);
}

function listItems(query) {
  let limit = 20;
  if (query.has('limit')) {
    const v = query.get('limit');
    if (!/^[0-9]{1,4}$/.test(v) || +v < 1 || +v > 100) throw new ApiError(400, 'limit must be 1..100');
    limit = +v;
  }
  let i = 0;
  if (query.has('cursor')) {
    const c = query.get('cursor');
    if (!pos.has(c)) throw new ApiError(400, 'bad cursor');
    i = pos.get(c) + 1;
  }
  const out = [];
  for (; i < order.length && out.length < limit; i++) {
    const it = items.get(order[i]);
    if (it) out.push(it);
  }
  let next = null;
  if (out.length === limit) {
    for (let k = i; k < order.length; k++) {
      if (items.has(order[k])) { next = out[out.length - 1].id; break; }
    }
  }
  return { items: out, next_cursor: next };
}

function createOrder(req, body) {
  const key = req.headers['idempotency-key'];
  if (key === undefined || key.length < 1 || key.length > 64)
    throw new ApiError(400, 'Idempotency-Key must be 1..64 characters');
  // flaw: Idempotency-Key is required but never remembered
  let result;
  try {
    if (body === undefined || !body || typeof body !== 'object' || Array.isArray(body))
      throw new ApiError(400, 'body must be a JSON object');
    if (typeof body.sku !== 'string' || !SKU_RE.test(body.sku))
      throw new ApiError(422, 'sku must be 1..32 of A-Z0-9-', 'sku');
    if (!isInt(body.quantity) || body.quantity < 1)
      throw new ApiError(422, 'quantity must be an integer >= 1', 'quantity');
    const id = skus.get(body.sku);
    if (id === undefined) throw new ApiError(404, 'unknown sku');
    const item = items.get(id);
    if (item.quantity < body.quantity) throw new ApiError(409, 'not enough stock');
    item.quantity -= body.quantity;
    result = [201, JSON.stringify({ id: crypto.randomUUID(), sku: body.sku, quantity: body.quantity })];
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    result = [e.status, JSON.stringify(e.body)];
  }
  return result;
}

function handle(req, res, raw) {
  const url = new URL(req.url, 'http://x');
  const segs = url.pathname.replace(/^\/+|\/+$/g, '').split('/');
  const method = req.method;
  if (url.pathname === '/healthz') {
    if (method !== 'GET') throw new ApiError(405, 'method not allowed');
    return send(res, 200, { status: 'ok' });
  }
  let allowed;
  if (segs[0] === 'items' && segs.length === 1) allowed = { GET: 0, POST: 2 };
  else if (segs[0] === 'items' && segs.length === 2 && segs[1]) allowed = { GET: 0, PATCH: 2, DELETE: 2 };
  else if (segs.length === 1 && segs[0] === 'orders') allowed = { POST: 1 };
  else throw new ApiError(404, 'not found');
  if (!(method in allowed)) throw new ApiError(405, 'method not allowed');
  const role = checkToken(req.headers.authorization);
  if (ROLES[role] < allowed[method]) throw new ApiError(403, 'role too low');
  let body;
  if (method === 'POST' || method === 'PATCH') {
    try {
      body = JSON.parse(raw);
    } catch (e) {
      throw new ApiError(400, 'body must be a JSON object');
    }
  }
  if (segs[0] === 'orders') {
    const [status, data] = createOrder(req, body);
    return send(res, status, data);
  }
  if (segs.length === 1) {
    if (method === 'GET') return send(res, 200, listItems(url.searchParams));
    validateItem(body, false);
    if (skus.has(body.sku)) throw new ApiError(409, 'sku exists');
    const item = { id: crypto.randomUUID(), sku: body.sku, name: body.name,
      price_cents: body.price_cents, quantity: body.quantity };
    items.set(item.id, item);
    skus.set(item.sku, item.id);
    pos.set(item.id, order.length);
    order.push(item.id);
    return send(res, 201, item, { Location: '/items/' + item.id });
  }
  const item = items.get(segs[1]);
  if (!item) throw new ApiError(404, 'no such item');
  if (method === 'GET') return send(res, 200, item);
  if (method === 'DELETE') {
    items.delete(item.id);
    skus.delete(item.sku);
    return send(res, 204);
  }
  validateItem(body, true);
  for (const f of ['name', 'price_cents', 'quantity']) if (f in body) item[f] = body[f];
  return send(res, 200, item);
}

http.createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size <= 1 << 20) chunks.push(c);
  });
  req.on('end', () => {
    try {
      handle(req, res, Buffer.concat(chunks).toString('utf8'));
    } catch (e) {
      if (e instanceof ApiError) send(res, e.status, e.body);
      else send(res, 500, { error: 'internal error' });
    }
  });
}).listen(PORT, '127.0.0.1');
