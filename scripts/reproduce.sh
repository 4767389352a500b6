#!/usr/bin/env bash
# Kept for the commands in older notes: the reproduction is `hw2 reproduce` (docs/report.md).
#   scripts/reproduce.sh [--profile quick|full] [--out DIR] [--device auto|cpu|cuda] [--force]
#                        [--parts table1,table2,rotation,gpt,graph,probes]
# HW2="python -m hw2cli" runs a checkout without installing it.
# shellcheck disable=SC2086  # HW2 may be a command with arguments
exec ${HW2:-hw2} reproduce "$@"
