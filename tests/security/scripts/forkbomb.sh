#!/bin/sh
# Shell fork bomb: must be contained (process limit), end by a limit, leave no survivor.
b() { b | b & }
b
wait
