#!/bin/sh
# Shell busy loop: must end with TLE.
while :; do :; done
