#!/bin/bash
# Cold reads as a new user meets them (issue "Performance", item 5): fresh
# `mxstate state` processes on a 59,035-group database (a 20k-member room
# and 50 small ones), timed from outside, median of N runs, the binaries
# given interleaved run by run. The binaries must read the same format
# version (opening a database migrates it to the opener's version).
#
#   benches/cold-reads.sh WORKDIR N BIN...
#
# WORKDIR gets the dump and the database (made with the first BIN when
# missing, about 700 MB and a minute). Prints, per binary: one key of one
# group (mostly the process start and the open), one key of 3,000 random
# groups (random.seed(1)), one type of the same groups, and the cold full
# state of the big room's latest group (the same read twice in one process
# tells the warm part apart).
set -euo pipefail
work=$1; n=$2; shift 2
mkdir -p "$work"
first=$(realpath "$1")
if [ ! -d "$work/db" ]; then
  "$first" synth --rooms 51 --members 20000 --seed 1 --out "$work/dump.sql"
  "$first" import --quiet --db "$work/db" "$work/dump.sql"
fi
groups=$("$first" stats --db "$work/db" | awk '/^groups/ {print $2}')
big=40769 # the 20k-member room's latest group in this dump
args=$(python3 -c "import random; random.seed(1); print(' '.join('--group %d' % g for g in random.sample(range(1, $groups + 1), 3000)))")
run() {
  local s e; s=$(date +%s%N)
  "$@" > /dev/null || { echo "failed: $1 $2 ..." >&2; kill $$; }
  e=$(date +%s%N); echo $(( (e - s) / 1000 ))
}
med() { tr ' ' '\n' <<< "$1" | grep . | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
declare -A r
for _ in $(seq "$n"); do
  for b in "$@"; do
    r[$b,one]+="$(run "$b" state --db "$work/db" --type m.room.create, --group $big) "
    r[$b,key]+="$(run "$b" state --db "$work/db" --type m.room.create, $args) "
    r[$b,type]+="$(run "$b" state --db "$work/db" --type m.room.create $args) "
    r[$b,full]+="$(run "$b" state --db "$work/db" --group $big) "
    r[$b,twice]+="$(run "$b" state --db "$work/db" --group $big --group $big) "
  done
done
for b in "$@"; do
  one=$(med "${r[$b,one]}"); key=$(med "${r[$b,key]}"); typ=$(med "${r[$b,type]}")
  full=$(med "${r[$b,full]}"); twice=$(med "${r[$b,twice]}")
  echo "$b: one group $one us; 3,000 groups one key $(( (key - one) / 3000 )) us/group," \
    "one type $(( (typ - one) / 3000 )) us/group; cold full state of $big about" \
    "$(( full - one - (twice - full) )) us"
done
