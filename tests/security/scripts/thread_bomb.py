# Python thread bomb: threads until refused; prints how many, then exits 3.
import threading
import time

n = 0
try:
    while n < 100000:
        threading.Thread(target=time.sleep, args=(1000,), daemon=True).start()
        n += 1
except RuntimeError as e:
    print("threads=%d err=%s" % (n, e))
raise SystemExit(3)
