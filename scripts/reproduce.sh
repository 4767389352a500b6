#!/usr/bin/env bash
# Reproduce the whole report with the public `hw2` commands, part by part, in the report's
# order, then build DIR/report.md with `hw2 report DIR`.
#
#   scripts/reproduce.sh [--profile quick|full] [--out DIR] [--device auto|cpu|cuda] [--force]
#                        [--parts table1,table2,rotation,gpt,graph,probes]
#
# quick: minutes on a 2-core CPU, no network (digits instead of CIFAR-10, a small GPT on a
#        text made from this project's docs, few rounds and epochs).
# full:  the report's settings (CIFAR-10 and Grimm's fairy tales are downloaded on first use).
# A part whose outputs are complete (DIR/<part>/part.json exists) is skipped; --force redoes it,
# keeping the complete part (in DIR/.<part>.old) until the new one is complete: a failing redo
# puts it back and leaves its own outputs in DIR/<part>.failed. A failing part stops the script
# with the part's name and its exit code. --parts runs only the listed parts (default: all); the
# report lists the others as not run. One script at a time writes DIR: a second one refuses
# with exit 2 naming the first one's PID (flock on DIR/.hw2.lock, as hw2's run directories).
set -euo pipefail

all_parts="table1,table2,rotation,gpt,graph,probes"

profile=quick
out=""
device=auto
force=0
parts="$all_parts"
usage="usage: scripts/reproduce.sh [--profile quick|full] [--out DIR] [--device auto|cpu|cuda] [--force] [--parts $all_parts]"
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="${2:?$usage}"; shift 2 ;;
    --out) out="${2:?$usage}"; shift 2 ;;
    --device) device="${2:?$usage}"; shift 2 ;;
    --force) force=1; shift ;;
    --parts) parts="${2:?$usage}"; shift 2 ;;
    -h|--help) echo "$usage"; exit 0 ;;
    *) echo "reproduce.sh: unknown argument '$1'; $usage" >&2; exit 2 ;;
  esac
done
case "$profile" in
  quick|full) ;;
  *) echo "reproduce.sh: unknown profile '$profile'; use quick or full" >&2; exit 2 ;;
esac
case "$device" in
  auto|cpu|cuda) ;;
  *) echo "reproduce.sh: unknown device '$device'; use auto, cpu or cuda" >&2; exit 2 ;;
esac
IFS=, read -r -a selected <<<"$parts"
for p in "${selected[@]}"; do
  case ",$all_parts," in
    *",$p,"*) ;;
    *) echo "reproduce.sh: unknown part '$p'; use a comma-separated list of $all_parts" >&2; exit 2 ;;
  esac
done
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${out:-reproduce-$profile}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
HW2="${HW2:-hw2}"   # override to e.g. "python -m hw2cli"

lock="$out/.hw2.lock"
if command -v flock >/dev/null 2>&1; then
  exec 9<>"$lock"
  if ! flock -n 9; then
    echo "reproduce.sh: $out is in use by process $(cat "$lock" 2>/dev/null || echo unknown) (lock $lock);" \
      "wait for that run to end or stop it, or choose another --out" >&2
    exit 2
  fi
  echo $$ >"$lock"
  trap 'rm -f "$lock"' EXIT
fi

# run_part NAME DESCRIPTION -- COMMAND...: run COMMAND (a shell function or hw2 call) with its
# output logged to DIR/NAME/log.txt; on success write DIR/NAME/part.json with the timing.
run_part() {
  local name="$1" title="$2"
  shift 3
  local dir="$out/$name" old="$out/.$name.old"
  case ",$parts," in
    *",$name,"*) ;;
    *) echo "== $name: not selected by --parts"; return 0 ;;
  esac
  if [ ! -f "$dir/part.json" ] && [ -f "$old/part.json" ]; then  # an earlier redo was cut
    rm -rf "$dir"
    mv "$old" "$dir"
  fi
  if [ "$force" -eq 0 ] && [ -f "$dir/part.json" ]; then
    echo "== $name: complete, skipped (use --force to redo)"
    return 0
  fi
  rm -rf "$old"
  if [ -f "$dir/part.json" ]; then mv "$dir" "$old"; else rm -rf "$dir"; fi
  mkdir -p "$dir"
  echo "== $name: $title"
  local start end rc
  start=$(date +%s.%N)
  # Not `( ... ) || rc=$?`: that would switch off `set -e` inside the part.
  set +e
  ( set -e; cd "$dir"; "$@" ) >"$dir/log.txt" 2>&1 9>&-
  rc=$?
  set -e
  end=$(date +%s.%N)
  if [ "$rc" -ne 0 ]; then
    local log="$dir/log.txt"
    if [ -d "$old" ]; then  # put the complete part back; keep the failed attempt beside it
      rm -rf "$out/$name.failed"
      mv "$dir" "$out/$name.failed"
      mv "$old" "$dir"
      log="$out/$name.failed/log.txt"
    fi
    tail -n 20 "$log" >&2
    echo "reproduce.sh: part '$name' failed with exit code $rc (log: $log)" >&2
    exit "$rc"
  fi
  local seconds
  seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  printf '{"part": "%s", "title": "%s", "profile": "%s", "device": "%s", "seconds": %s, "finished": "%s", "machine": "%s", "cpus": %s, "hw2": "%s"}\n' \
    "$name" "$title" "$profile" "$device" "$seconds" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "$(uname -srm)" "$(getconf _NPROCESSORS_ONLN)" "$($HW2 --version)" >"$dir/part.json.tmp"
  mv "$dir/part.json.tmp" "$dir/part.json"
  rm -rf "$old"
  echo "   done in ${seconds}s"
}

if [ "$profile" = quick ]; then
  pad_opts=(--rounds 2 --epochs 3)
  rot_opts=(--dataset digits --epochs 3)
  gpt_opts=(--model-type gpt-nano --block-size 64 --batch-size 16 --max-steps 200 --eval-interval 100 --eval-steps 5)
else
  pad_opts=(--rounds 10 --epochs 50)
  rot_opts=(--dataset cifar10 --epochs 10)
  gpt_opts=()
fi

table() {  # table NET
  $HW2 padding-bench --net "$1" "${pad_opts[@]}" --device "$device" --quiet --json result.json --csv result.csv \
    --plot table.png
}

rotation() {
  $HW2 rotate-eval "${rot_opts[@]}" --mode both --device "$device" --quiet \
    --json result.json --plot rotation.png --preview preview.png --save-models models
}

gpt() {
  local corpus=()
  if [ "$profile" = quick ]; then
    # A text that needs no download: the project's own documentation, without the table-drawing
    # characters (U+2500-U+257F) of its pasted terminal output, so the samples read as text.
    cat "$root"/README.md "$root"/CONTRIBUTING.md "$root"/CHANGELOG.md "$root"/docs/*.md |
      perl -CSD -pe 's/[\x{2500}-\x{257F}]//g' >corpus.txt
    echo "this project's own documentation (README.md, CONTRIBUTING.md, CHANGELOG.md, docs/*.md)," \
      "table-drawing characters removed, $(wc -m <corpus.txt) characters" >corpus_source.txt
    corpus=(--txt-file corpus.txt)
  fi
  $HW2 gpt train "${corpus[@]}" "${gpt_opts[@]}" --device "$device" --quiet --out run --json train.json
  local i=0 settings
  for settings in "--greedy" "--temperature 0.8 --top-k 10" "--temperature 1.0 --top-p 0.9"; do
    # shellcheck disable=SC2086
    $HW2 gpt generate run --prompt "The " --num-samples 2 --max-new-tokens 120 --seed 0 $settings \
      --json "samples_$i.json"
    i=$((i + 1))
  done
}

graphs() {
  local g
  for g in report_graph1 report_graph2; do  # the homework's own two graphs
    $HW2 graph powers "$root/examples/$g.txt" --max-power 3 --json "${g}_powers.json"
    $HW2 graph laplacian "$root/examples/$g.txt" --normalized --json "${g}_laplacian.json"
  done
  # The homework's own Laplacian of graph 2 has a mistake in row 3: `check` must find it (exit 1).
  local rc=0
  $HW2 graph check "$root/examples/report_graph2.txt" --kind laplacian \
    --matrix "$root/examples/report_graph2_laplacian.txt" --json check.json || rc=$?
  [ "$rc" -eq 1 ] || { echo "graph check should have found the report's mistake (exit 1), got $rc"; return 1; }
}

probes() {  # `hw2 probe NAME` for every probe of the report's Q2.1 / Q2.4 answers
  local size=() corpus=() name
  if [ "$profile" = quick ]; then
    size=(--quick)
    cat "$root"/README.md "$root"/CONTRIBUTING.md "$root"/CHANGELOG.md "$root"/docs/*.md |
      perl -CSD -pe 's/[\x{2500}-\x{257F}]//g' >corpus.txt  # as in gpt(): no table-drawing characters
    corpus=(--txt-file corpus.txt)
  fi
  for name in attention-cost receptive-field; do
    $HW2 probe "$name" "${size[@]}" --device "$device" --quiet --json "$name.json" --plot "$name.png"
  done
  for name in softmax-scale heads positions; do
    $HW2 probe "$name" "${size[@]}" "${corpus[@]}" --device "$device" --quiet --json "$name.json" --plot "$name.png"
  done
}

overall_start=$(date +%s)
run_part table1 "Table 1: padding and translation invariance, Net1" -- table net1
run_part table2 "Table 2: padding and translation invariance, Net2" -- table net2
run_part rotation "Figures 1 and 2: accuracy against rotation angle" -- rotation
run_part gpt "Figure 3 and samples: character-level micro-GPT" -- gpt
run_part graph "Q3.1: adjacency powers, degree and Laplacian matrices" -- graphs
run_part probes "The report's answers (Q2.1, Q2.4), measured" -- probes
$HW2 report "$out"
echo "reproduce.sh: profile $profile finished in $(( $(date +%s) - overall_start ))s; report: $out/report.md"
