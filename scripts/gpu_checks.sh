#!/usr/bin/env bash
# The checks run on a lent CUDA machine, in one go (its time is short): the CUDA benchmark in
# float32 (against transformers), float16, bfloat16 and compiled, then training recipes side by
# side on the GPU (scripts/sweep_training.py). Everything goes to $OUT (default outputs/gpu_checks).
# Needs torch with CUDA, opencv, numpy, safetensors, tqdm, transformers and scikit-image installed.
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-outputs/gpu_checks}"
DEVICE="${DEVICE:-cuda}"
SWEEP_SECONDS="${SWEEP_SECONDS:-320}"
SCENES="${SCENES:-5000}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD" PYTHONUNBUFFERED=1
log="$OUT/run.log"
started=$SECONDS
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
    python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
    bench="python3 -m muggled_swinv2 bench --device $DEVICE --batch-sizes 1,8 --repeats 10"
    timeout 90 $bench --models tiny,base,large --dtype float32 || echo "bench float32: exit $?"
    timeout 35 $bench --models tiny,base,large --dtype float16 --no-peer --no-memory || echo "bench float16: exit $?"
    timeout 35 $bench --models tiny,base,large --dtype bfloat16 --no-peer --no-memory || echo "bench bfloat16: exit $?"
    timeout 70 $bench --models tiny,base --dtype float16 --compile --no-memory || echo "bench compiled: exit $?"
    echo "benchmarks took $((SECONDS - started)) s"
} 2>&1 | tee "$log"
python3 scripts/sweep_training.py --out "$OUT" --device "$DEVICE" --scenes "$SCENES" --deadline "$SWEEP_SECONDS" \
    --recipe "old192:size=192,batch_size=8,lr=5e-4,steps=3000,val_every=1000,old_loss=1" \
    --recipe "new192:size=192,batch_size=8,lr=5e-4,steps=4000,val_every=1000" \
    --recipe "new128:size=128,batch_size=8,lr=5e-4,steps=6000,val_every=1000" \
    --recipe "new128lr:size=128,batch_size=8,lr=1e-3,steps=6000,val_every=1000" \
    --recipe "new128b16:size=128,batch_size=16,lr=1e-3,steps=3000,val_every=1000" \
    --recipe "long192:size=192,batch_size=16,lr=1e-3,steps=12000,val_every=2000" \
    "$@" 2>&1 | tail -20 | tee -a "$log"
echo "all took $((SECONDS - started)) s" | tee -a "$log"
# What comes back from a lent machine is limited: keep the logs, the long run and the best recipe's weights.
rm -f "$OUT"/*.state.pt
python3 - "$OUT" <<'PY'
import json, pathlib, re, sys
out = pathlib.Path(sys.argv[1])
scores = {}
for line in (out / "sweep.log").read_text().splitlines():
    match = re.match(r"\[(\S+) [\d:]+\] TEST (.*)", line)
    if match:
        scores[match.group(1)] = json.loads(match.group(2))["absrel"]
keep = {"long192"} | set(sorted(scores, key=scores.get)[:1])
print("test AbsRel by recipe:", {name: round(value, 4) for name, value in sorted(scores.items(), key=lambda kv: kv[1])})
for path in out.glob("*.safetensors"):
    if path.stem not in keep:
        path.unlink()
PY
