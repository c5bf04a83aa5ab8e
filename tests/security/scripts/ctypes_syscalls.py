# Forbidden calls from Python through ctypes (no C compiler needed): must be SV or fail.
import ctypes
import os
import sys

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER = 0x10000000
what = sys.argv[1] if len(sys.argv) > 1 else "unshare"
if what == "unshare":
    rc = libc.unshare(CLONE_NEWUSER)
elif what == "mount":
    rc = libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)
elif what == "ptrace":
    rc = libc.ptrace(16, 1, None, None)  # PTRACE_ATTACH to the box init
else:
    raise SystemExit(2)
print(what, "OK" if rc == 0 else "ERR " + os.strerror(ctypes.get_errno()))
