// Node reaching out: every connection must fail at once (no route), nothing may resolve.
const net = require('net');
const fs = require('fs');
const names = fs.readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2)
  .filter((l) => l.includes(':')).map((l) => l.split(':')[0].trim());
if (names.join(',') !== 'lo') { console.log('UNSAFE interfaces', names); process.exit(0); }
let pending = 0;
for (const [host, port] of [['93.184.216.34', 80], ['10.0.0.1', 443]]) {
  pending++;
  const s = net.connect({ host, port, timeout: 1000 });
  s.on('connect', () => { console.log(host, 'CONNECTED'); s.destroy(); });
  s.on('timeout', () => { console.log(host, 'ERR timeout'); s.destroy(); });
  s.on('error', (e) => { console.log(host, 'ERR', e.code); });
  s.on('close', () => { if (--pending === 0) secrets(); });
}
function secrets() {
  for (const p of ['/etc/shadow', '/root', '/home', '/work/main']) {
    try { fs.readdirSync(p); console.log(p, 'LISTED'); } catch (e) {
      try { fs.readFileSync(p); console.log(p, 'READ'); } catch (e2) { console.log(p, 'ERR', e2.code); }
    }
  }
}
