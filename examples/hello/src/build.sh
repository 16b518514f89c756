#!/bin/sh
# Deterministic on purpose: no date, no randomness; SOURCE_DATE_EPOCH is the only clock.
echo "hello from kiln"
echo "built for SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH}"
