#!/usr/bin/env bash
# A trainer in plain bash for `optunapi worker`: the params arrive as environment variables
# (X, Y, OPTIMIZER), progress is reported as `optunapi:report STEP VALUE` lines, and the
# objective is the last line printed.
set -euo pipefail

loss=$(awk -v x="$X" -v y="$Y" 'BEGIN { printf "%.6f", (x - 1) ^ 2 + (y + 2) ^ 2 }')
for step in 1 2 3; do
    # A "training curve" that approaches the loss.
    awk -v l="$loss" -v s="$step" 'BEGIN { printf "optunapi:report %d %.6f\n", s, l + 10 / s }'
done
if [ "$OPTIMIZER" = "sgd" ] && awk -v x="$X" 'BEGIN { exit !(x > 8) }'; then
    echo "diverged with sgd at x=$X" >&2
    exit 3
fi
echo "$loss"
