#!/usr/bin/env bash
# Run every GPU claim of the project once, with the public `hw2` commands, and write one JSON
# summary (DIR/summary.json): per check its command, exit code, wall time and key numbers.
#
#   scripts/gpu-check.sh [--smoke] [--out DIR] [--device cuda|cpu|auto] [--txt FILE]
#
# full (default, --device cuda): the whole Table 1 through the batched trainer; nanoGPT's
#   shakespeare-char configuration (6 layers, 6 heads, 384 dims, block 256, batch 64, dropout
#   0.2, lr 1e-3 cosine to 1e-4, 100 warm-up, 5,000 steps) on Grimm's fairy tales with bf16 and
#   --compile; rotate-eval on digits; KV-cached generation; `hw2 probe attention-cost` when the
#   command exists. Sized to end within about 8 minutes on one H100-class GPU.
# --smoke: the same checks at toy sizes on the CPU (no compile, fp32): seconds, run by the
#   test suite so that the script cannot rot.
# Every check runs even when an earlier one fails; the exit code is 1 when any failed.
# --txt FILE: the GPT corpus (default ../shared/data/grimms_fairy_tales.txt beside the
#   checkout when present, else a text made from this project's documentation).
set -uo pipefail

smoke=0
out=""
device=""
txt=""
usage="usage: scripts/gpu-check.sh [--smoke] [--out DIR] [--device cuda|cpu|auto] [--txt FILE]"
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1; shift ;;
    --out) out="${2:?$usage}"; shift 2 ;;
    --device) device="${2:?$usage}"; shift 2 ;;
    --txt) txt="${2:?$usage}"; shift 2 ;;
    -h|--help) echo "$usage"; exit 0 ;;
    *) echo "gpu-check.sh: unknown argument '$1'; $usage" >&2; exit 2 ;;
  esac
done
if [ "$smoke" -eq 1 ]; then device="${device:-cpu}"; else device="${device:-cuda}"; fi
case "$device" in
  auto|cpu|cuda) ;;
  *) echo "gpu-check.sh: unknown device '$device'; use cuda, cpu or auto" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${out:-gpu-check}"
if [ -e "$out/summary.json" ]; then
  echo "gpu-check.sh: $out/summary.json exists; pass another --out (earlier results are kept)" >&2
  exit 2
fi
mkdir -p "$out" || exit 2
out="$(cd "$out" && pwd)"
HW2="${HW2:-hw2}"   # override to e.g. "python -m hw2cli"
PY="${PYTHON:-python3}"

if [ -z "$txt" ]; then
  if [ -f "$root/../shared/data/grimms_fairy_tales.txt" ] && [ "$smoke" -eq 0 ]; then
    txt="$root/../shared/data/grimms_fairy_tales.txt"
  else
    txt="$out/corpus.txt"
    cat "$root"/README.md "$root"/CONTRIBUTING.md "$root"/docs/*.md >"$txt"
  fi
fi
[ -f "$txt" ] || { echo "gpu-check.sh: --txt $txt does not exist; give a UTF-8 text file" >&2; exit 2; }

if [ "$smoke" -eq 1 ]; then
  table_opts=(--rounds 1 --epochs 1 --conv-types valid)
  gpt_opts=(--model-type gpt-nano --block-size 32 --batch-size 4 --max-steps 10 --eval-interval 5
            --eval-steps 2 --log-interval 5 --sample-interval 0 --flash-attn)
  rot_opts=(--epochs 1 --mode plain --angles 0,90)
  gen_tokens=16
  probe_opts=(--quick)
else
  table_opts=(--rounds 10 --epochs 50)
  gpt_opts=(--model-type gpt-mini --block-size 256 --batch-size 64 --dropout 0.2 --lr 1e-3
            --lr-schedule cosine --min-lr 1e-4 --warmup-steps 100 --max-steps 5000 --eval-interval 250
            --eval-steps 200 --log-interval 50 --sample-interval 0 --flash-attn --precision bf16 --compile)
  rot_opts=(--epochs 10 --mode both)
  gen_tokens=500
  probe_opts=()
fi

failed=0
: >"$out/checks.jsonl"
# check NAME JSON -- COMMAND...: run COMMAND in DIR/NAME with its output in DIR/NAME/log.txt and
# append {name, command, rc, seconds, json} to DIR/checks.jsonl.
check() {
  local name="$1" json="$2"
  shift 3
  local dir="$out/$name" start end rc
  mkdir -p "$dir"
  echo "== $name"
  start=$(date +%s.%N)
  ( cd "$dir" && "$@" ) >"$dir/log.txt" 2>&1
  rc=$?
  end=$(date +%s.%N)
  [ "$rc" -eq 0 ] || { failed=1; tail -n 5 "$dir/log.txt" >&2; echo "   $name failed with exit code $rc" >&2; }
  NAME="$name" RC="$rc" START="$start" END="$end" JSON_FILE="$dir/$json" CMD="$*" "$PY" - >>"$out/checks.jsonl" <<'EOF'
import json, os
row = {"name": os.environ["NAME"], "command": os.environ["CMD"], "rc": int(os.environ["RC"]),
       "seconds": round(float(os.environ["END"]) - float(os.environ["START"]), 2), "json": None}
if os.path.isfile(os.environ["JSON_FILE"]):
    with open(os.environ["JSON_FILE"]) as f:
        row["json"] = json.load(f)
print(json.dumps(row))
EOF
}

check table1 result.json -- $HW2 padding-bench --net net1 "${table_opts[@]}" --device "$device" --quiet --json result.json
check gpt_train train.json -- $HW2 gpt train --txt-file "$txt" "${gpt_opts[@]}" --device "$device" --quiet \
  --out run --json train.json
check gpt_generate samples.json -- $HW2 gpt generate ../gpt_train/run --prompt "Once upon a time" \
  --num-samples 5 --max-new-tokens "$gen_tokens" --temperature 0.8 --top-k 20 --device "$device" --json samples.json
check rotation result.json -- $HW2 rotate-eval --dataset digits "${rot_opts[@]}" --device "$device" --quiet \
  --json result.json
if $HW2 probe --help >/dev/null 2>&1; then
  check attention_cost result.json -- $HW2 probe attention-cost "${probe_opts[@]}" --device "$device" --quiet \
    --json result.json
fi

# One summary: the machine, then per check the numbers a reader compares with the claims.
DEVICE="$device" SMOKE="$smoke" "$PY" - "$out" <<'EOF'
import json, os, platform, sys
out = sys.argv[1]
rows = [json.loads(line) for line in open(os.path.join(out, "checks.jsonl")) if line.strip()]

def key_numbers(name, data):
    if data is None:
        return {}
    if name == "table1":
        return {"seconds": data.get("seconds"), "gflops": data.get("gflops"), "device": data.get("device"),
                "test_mean": {k: v["summary"]["test"]["mean"] for k, v in data.get("conv_types", {}).items()}}
    if name == "gpt_train":
        keep = ("best_val_loss", "val_loss", "train_loss", "tokens_per_s", "elapsed_s", "step", "device", "precision")
        return {k: data.get(k) for k in keep if k in data}
    if name == "gpt_generate":
        n = sum(len(s["completion"]) for s in data.get("samples", []))
        t = data.get("elapsed_s") or 0
        return {"elapsed_s": t, "new_characters": n, "characters_per_s": n / t if t else None}
    if name == "rotation":
        return {m: {"mean_accuracy": v.get("mean_accuracy"), "train_seconds": v.get("train_seconds")}
                for m, v in data.get("models", {}).items()}
    return {k: v for k, v in data.items() if isinstance(v, (int, float, str))}

summary = {
    "smoke": os.environ["SMOKE"] == "1",
    "device": os.environ["DEVICE"],
    "machine": platform.platform(),
    "ok": all(r["rc"] == 0 for r in rows),
    "checks": [{"name": r["name"], "command": r["command"], "rc": r["rc"], "seconds": r["seconds"],
                "numbers": key_numbers(r["name"], r["json"])} for r in rows],
}
try:
    import torch
    summary["torch"] = torch.__version__
    if torch.cuda.is_available():
        summary["gpu"] = torch.cuda.get_device_name(0)
except ImportError:
    pass
tmp = os.path.join(out, "summary.json.tmp")
with open(tmp, "w") as f:
    json.dump(summary, f, indent=2, allow_nan=False)
os.replace(tmp, os.path.join(out, "summary.json"))
for c in summary["checks"]:
    print(f"{c['name']:<16} rc {c['rc']}  {c['seconds']:8.1f} s")
EOF
echo "gpu-check.sh: summary in $out/summary.json"
exit "$failed"
