// Reference solution in Node: a Map of buckets, exact integer milli-tokens without BigInt.
// (T-L)*R can reach 10^18, past 2^53: a gap longer than 2*10^9 ms always refills the bucket
// (capacity <= 10^9 milli-tokens and R >= 1), and shorter gaps give products below 2^53.
'use strict';
const fs = require('fs');

const text = fs.readFileSync(0, 'latin1');
const lines = text.split('\n');
const head = lines[0].trim().split(/\s+/);
const full = Number(head[0]) * 1000;
const rate = Number(head[1]);
const buckets = new Map();
const out = [];
for (let i = 1; i < lines.length; i++) {
  const line = lines[i];
  const sp = line.indexOf(' ');
  if (sp < 0) continue;
  const t = Number(line.slice(0, sp));
  const key = line.slice(sp + 1).trim();
  let b = buckets.get(key);
  if (b === undefined) {
    b = { bal: full, last: t };
    buckets.set(key, b);
  }
  const gap = t - b.last;
  let bal;
  if (rate > 0 && gap > 2e9) {
    bal = full;
  } else {
    bal = b.bal + gap * rate;
    if (bal > full) bal = full;
  }
  b.last = t;
  if (bal >= 1000) {
    b.bal = bal - 1000;
    out.push('ALLOW');
  } else {
    b.bal = bal;
    out.push('DENY');
  }
}
process.stdout.write(out.length ? out.join('\n') + '\n' : '');
