#!/bin/sh
# Shell disk fill of the work dir through one file: RLIMIT_FSIZE must end it (OLE).
cat /dev/zero > /box/zero.bin
echo "cat ended with $?"
