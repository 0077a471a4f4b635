#!/usr/bin/env bash
# Bit-identity check for refactors: 4 steps of every method stack (micro preset, seed 7), then a
# canonical hash of every checkpoint tensor and its metadata, every grid PNG and each run's
# metrics without wall-clock fields. Run it with the binary before and after; diff the outputs.
bin=$1; out=$2
rm -rf "$out"; mkdir -p "$out"
for c in demo-synthetic demo-synthetic-cbdm demo-synthetic-t2h demo-synthetic-diffrop demo-synthetic-ccua demo-synthetic-coral demo-synthetic-cm; do
  $bin train --config $c --preset micro --steps 4 --checkpoint-every 2 --sample-every 4 --out "$out/$c" --seed 7 >/dev/null 2>&1 || { echo "FAIL $c"; }
done
$bin train --config demo-synthetic --method cb-loss --preset micro --steps 4 --checkpoint-every 2 --sample-every 4 --out "$out/cbloss" --seed 7 >/dev/null 2>&1 || echo "FAIL cbloss"
python3 "$(dirname "$0")/bit_identity_hash.py" "$out"
