// Flawed on purpose: the balance is never capped at the bucket's capacity, so a key that was
// idle for a long time gets an unlimited burst.
'use strict';
const fs = require('fs');

const lines = fs.readFileSync(0, 'latin1').split('\n');
const head = lines[0].trim().split(/\s+/);
const full = Number(head[0]) * 1000;
const rate = Number(head[1]);
const buckets = new Map();
const out = [];
for (let i = 1; i < lines.length; i++) {
  const parts = lines[i].trim().split(/\s+/);
  if (parts.length !== 2) continue;
  const t = Number(parts[0]);
  const key = parts[1];
  let b = buckets.get(key);
  if (b === undefined) {
    b = { bal: full, last: t };
    buckets.set(key, b);
  }
  b.bal += (t - b.last) * rate;
  b.last = t;
  if (b.bal >= 1000) {
    b.bal -= 1000;
    out.push('ALLOW');
  } else {
    out.push('DENY');
  }
}
process.stdout.write(out.length ? out.join('\n') + '\n' : '');
