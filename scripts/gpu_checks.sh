#!/usr/bin/env bash
# The checks run on a lent CUDA machine, in one go (its time is short), results to $OUT
# (default outputs/gpu_checks):
# 1. what more compute buys the demo model: recipes side by side on the GPU for a fixed time each
#    (scripts/sweep_training.py, `seconds=`), large batches, batches made by worker processes; the
#    micro model for the full time and for a third of it, at batch 32, and a 2x larger model;
# 2. the CUDA benchmark in bfloat16, eager and compiled (tiny, random weights);
# 3. the `video` job's frames/s on the GPU against the model alone (scripts/video_speed.py).
# Needs torch with CUDA, opencv, numpy, safetensors, tqdm and scikit-image installed.
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-outputs/gpu_checks}"
TRAIN_SECONDS="${TRAIN_SECONDS:-240}"
SCENES="${SCENES:-4000}"  # the demo recipe's
DEVICE="${DEVICE:-cuda}"
BATCH="${BATCH:-128}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD" PYTHONUNBUFFERED=1
log="$OUT/run.log"
started=$SECONDS
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
} 2>&1 | tee "$log"
third=$((TRAIN_SECONDS / 3))
common="size=192,batch_size=$BATCH,warmup=300,val_every=1000"
timeout $((TRAIN_SECONDS + 110)) python3 scripts/sweep_training.py --out "$OUT" --device "$DEVICE" --scenes "$SCENES" --deadline $((TRAIN_SECONDS + 100)) \
    --recipe "micro:$common,lr=8e-4,seconds=$TRAIN_SECONDS,workers=4" \
    --recipe "micro_third:$common,lr=8e-4,seconds=$third,workers=2" \
    --recipe "micro_b32:size=192,batch_size=32,warmup=300,val_every=1000,lr=5e-4,seconds=$TRAIN_SECONDS,workers=2" \
    --recipe "big:$common,lr=6e-4,seconds=$TRAIN_SECONDS,workers=4,embed_dims=48/96/192/384,num_heads=2/3/6/12,depths=2/2/6/2,fusion_channels=96" \
    2>&1 | tail -5 | tee -a "$log"
echo "sweep ended at $((SECONDS - started)) s" | tee -a "$log"
{
    bench="python3 -m muggled_swinv2 bench --device $DEVICE --models tiny --batch-sizes 1,8 --repeats 10 --dtype bfloat16 --no-peer --no-memory"
    timeout 45 $bench || echo "bench eager: exit $?"
    timeout 120 $bench --compile || echo "bench compiled: exit $?"
    timeout 50 python3 scripts/video_speed.py --device $DEVICE --config tiny --size 256 --batch-size 8 --frames 96 --repeats 2 --no-serial \
        || echo "video speed: exit $?"
    echo "all took $((SECONDS - started)) s"
} 2>&1 | tee -a "$log"
# What comes back from a lent machine is limited (8 files, 16 MiB each): the logs and float16 weights.
for path in "$OUT"/*.safetensors; do
    [ -e "$path" ] || continue
    python3 -m muggled_swinv2 convert "$path" "${path%.safetensors}_f16.safetensors" --dtype float16 --overwrite >/dev/null \
        && rm -f "$path"
done
rm -f "$OUT"/*.state.pt
ls -la "$OUT"
