#!/usr/bin/env bash
# The full kill harness of the reliability checks: `ltlab train` killed with SIGKILL at N random
# moments (default 20) and resumed each time; prints one line per kill (steps to redo, torn
# writes) and fails if a step is lost or duplicated, a file is torn, or the final checkpoint
# differs from an uninterrupted run's. The test command runs the same test with 3 kills.
set -euo pipefail
cd "$(dirname "$0")/.."
LTLAB_KILLS="${1:-20}" cargo test -p ltlab --locked --test cli random_kills_lose_nothing -- --nocapture
