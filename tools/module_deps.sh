#!/usr/bin/env bash
# The binary's module graph (app/src): which top-level module imports which, from `crate::`
# paths. Fails if a module imports one that imports it back (main → {cli, lab} → host is the
# intended shape). Part of the test command.
set -euo pipefail
cd "$(dirname "$0")/../app/src"
edges=$(for f in $(find . -name '*.rs' | sort); do
  from=$(echo "$f" | sed -E 's#^\./##; s#/.*##; s#\.rs$##')
  { grep -oE 'crate::[a-z_]+' "$f" || true; } | sed 's/crate:://' | sort -u | while read -r to; do
    if [ "$to" != "$from" ]; then echo "$from -> $to"; fi
  done
done | sort -u)
echo "$edges"
status=0
while read -r a _ b; do
  [ -z "$a" ] && continue
  if echo "$edges" | grep -qx "$b -> $a"; then
    echo "loop: $a <-> $b" >&2
    status=1
  fi
done <<< "$edges"
# Longer loops: a module reachable from itself.
for m in $(echo "$edges" | awk '{print $1; print $3}' | sort -u); do
  seen=" "; frontier="$m"
  while [ -n "$frontier" ]; do
    next=""
    for n in $frontier; do
      for t in $(echo "$edges" | awk -v n="$n" '$1 == n {print $3}'); do
        if [ "$t" = "$m" ]; then echo "loop through $m" >&2; status=1; fi
        case "$seen" in *" $t "*) ;; *) seen="$seen$t "; next="$next $t";; esac
      done
    done
    frontier="$next"
  done
done
exit $status
