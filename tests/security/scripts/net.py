# Outbound connections from Python: must fail at once (no route), never reach out.
import errno
import socket
import sys

with open("/proc/net/dev") as f:
    names = [l.split(":")[0].strip() for l in f.read().splitlines()[2:] if ":" in l]
if names != ["lo"]:
    print("UNSAFE interfaces", names)
    sys.exit(0)
for host, port in (("93.184.216.34", 80), ("10.0.0.1", 443), ("1.1.1.1", 53)):
    try:
        s = socket.create_connection((host, port), timeout=1)
        print(host, "CONNECTED")
        s.close()
    except OSError as e:
        print(host, "ERR", errno.errorcode.get(e.errno, str(e)))
try:
    socket.getaddrinfo("example.com", 80)
    print("dns RESOLVED")
except OSError as e:
    print("dns ERR", type(e).__name__)
