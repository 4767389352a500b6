#!/usr/bin/env bash
# The package as a user gets it: build the sdist and the wheel, check their metadata, install
# the wheel into a fresh virtual environment outside the clone and run, from an empty folder,
# the README's quick start and one small job of each command family.
#
#   scripts/wheel-check.sh [--lowest-direct] [--keep]
#
# --lowest-direct: resolve every direct dependency of pyproject.toml to the lowest version it
#   allows (uv's lowest-direct resolution; torch included), to prove the floors are true.
# --keep: leave the work folder (build, environment, outputs) and print where it is.
# Needs `build`, `twine` and `uv` beside the Python that runs it (the test extra has them).
# Every command must succeed (`hw2 graph check` must find the wrong row: exit 1); the first
# that does not stops the script with its exit code. Prints the wall time of each stage.
set -euo pipefail

lowest=0
keep=0
for arg in "$@"; do
  case "$arg" in
    --lowest-direct) lowest=1 ;;
    --keep) keep=1 ;;
    *) echo "usage: scripts/wheel-check.sh [--lowest-direct] [--keep]" >&2; exit 2 ;;
  esac
done

clone=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/hw2-wheel-check.XXXXXX")
if [ "$keep" = 1 ]; then
  trap 'echo "work folder kept: $work"' EXIT
else
  trap 'rm -rf "$work"' EXIT
fi
t0=$SECONDS
stage() { echo "== [$((SECONDS - t0)) s] $*"; }

stage "build the sdist, then the wheel from it"
"$python" -m build --outdir "$work/dist" "$clone" >"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; exit 1; }
if grep -i "deprecat" "$work/build.log"; then
  echo "error: the build reports a deprecated setting (above); fix pyproject.toml" >&2
  exit 1
fi
"$python" -m twine check --strict "$work"/dist/*
wheel=$(ls "$work"/dist/*.whl)

stage "install the wheel into a fresh environment ($([ "$lowest" = 1 ] && echo lowest-direct || echo newest) dependencies)"
"$python" -m venv "$work/venv"
if [ "$lowest" = 1 ]; then
  # the pins come from pyproject.toml's own dependencies, then the wheel is installed on them
  "$python" -m uv pip compile --quiet --resolution lowest-direct --python "$work/venv/bin/python" \
    "$clone/pyproject.toml" -o "$work/lowest.txt"
  "$python" -m uv pip install --quiet --compile-bytecode --python "$work/venv/bin/python" \
    -r "$work/lowest.txt" "$wheel"
else  # uv, not pip: the same resolution, but from its cache in seconds rather than minutes
  "$python" -m uv pip install --quiet --compile-bytecode --python "$work/venv/bin/python" "$wheel"
fi
# shellcheck disable=SC1091
source "$work/venv/bin/activate"
unset PYTHONPATH # the installed wheel, never the clone's sources
python -m pip list 2>/dev/null | grep -iE '^(typer|click|rich|numpy|torch|torchvision|networkx|scipy|matplotlib|safetensors|scikit-learn|pydantic|tokenizers|huggingface.hub) '

mkdir "$work/run"
cd "$work/run"
stage "every module imports, every command's help renders, from $work/run"
python - <<'EOF'
import importlib
import pkgutil

import hw2cli
import typer.main
from typer.testing import CliRunner

from hw2cli.cli import app

assert "site-packages" in hw2cli.__file__, hw2cli.__file__
for module in pkgutil.walk_packages(hw2cli.__path__, "hw2cli."):
    if module.name != "hw2cli.__main__":  # that one runs the command line
        importlib.import_module(module.name)


def paths(cmd, path=()):
    yield path
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from paths(sub, (*path, name))


for path in paths(typer.main.get_command(app)):
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output, (path, result.output)
print("hw2", hw2cli.__version__, "from", hw2cli.__file__)
EOF

stage "the README's quick start"
hw2 --version
hw2 examples
hw2 graph powers examples/graph1.txt --walks 1 3 --length 3
hw2 graph laplacian examples/graph2.txt --json out/graph2.json
rc=0
hw2 graph check examples/report_graph2.txt --kind laplacian --matrix examples/report_graph2_laplacian.txt || rc=$?
[ "$rc" = 1 ] || { echo "error: graph check exited $rc, not 1 (the wrong row found)" >&2; exit 1; }
hw2 padding-bench --net net1 --rounds 1 --epochs 1 --conv-types valid,circular --quiet --json out/table1.json

stage "the quick reproduction's graph and table2 parts, then hw2 report"
hw2 reproduce --profile quick --parts graph,table2 --out repro
hw2 report repro --out repro/report-again.md
grep -q "Table 2" repro/report-again.md

stage "one small job of each other family"
hw2 rotate-eval --dataset digits --epochs 1 --angles 0,90 --mode plain --quiet --json out/rotation.json
python -c "from hw2cli.common.corpus import write_builtin_corpus; write_builtin_corpus('corpus.txt')"
hw2 gpt train --txt-file corpus.txt --model-type gpt-nano --block-size 32 --batch-size 8 --max-steps 5 \
  --eval-interval 5 --eval-steps 1 --out run --quiet
hw2 gpt generate run --prompt "The " --max-new-tokens 20 --seed 0
hw2 probe attention-cost --quick --quiet --json out/attention.json
stage "all passed"
