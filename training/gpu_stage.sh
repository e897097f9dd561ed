#!/usr/bin/env bash
# One training stage on a borrowed GPU machine: every config given trains at once, sharing the GPU.
#
# Here (the CPU machine), build what travels, into the git-ignored .gpu/ folder:
#   python -m training.pack pack --cache cache/faces --out .gpu/data --quality 94 --val-faces 100
#   python -m training.pack halve resources/weights/<each init_from file> --out .gpu/init
# and, for a degradation mix with an H.264 pass (mix, mix_wide), PyAV, which the GPU machine's
# image lacks: its manylinux wheel (abi3) unzipped and xz-compressed (25 MB instead of 36), e.g.
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 av==18.1.0
#   mkdir w && cd w && unzip ../av-*.whl && tar -cf - . | xz -9e >../.gpu/av.tar.xz
# With that, the whole train split no longer fits: pack --train-faces 5300 --keep-source celebamask_hq.
# There (repo root; engine/, training/ and .gpu/ copied over):
#   bash training/gpu_stage.sh MINUTES training/configs/s4_idrn_x4_gpu.json ...
# Results land in $OUT (default .gpu/out): the exported weights, cards and loss curves as a tar
# split into 15 MB parts, and every run's log. Back here:
#   cat .gpu/out/weights.tar.part-* | tar -x -C <folder>
# then evaluate (python -m training.evaluate) before a file replaces a shipped one.
#
# Only .gpu/, engine/ and training/ should travel (the tracked weights and docs alone pass the
# 64 MiB): session 10 saved .git/index, ran `git read-tree --empty` and put `/*` in
# .git/info/exclude, called the machine with carry [".gpu", "engine", "training"], then restored
# the index and removed the exclude line.
#
# Why a script: the GPU machine is lent for minutes, starts bare, and takes at most 64 MiB of
# files, so the data travel packed (training/pack.py) and all runs go in one call.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-.gpu/out}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
minutes=$1
shift
mkdir -p "$OUT" runs resources/weights

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
if [ -f .gpu/av.tar.xz ]; then
    mkdir -p /tmp/site
    "$PY" -c "import tarfile; tarfile.open('.gpu/av.tar.xz').extractall('/tmp/site', filter='data')" || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
"$PY" -c "import av; print('PyAV', av.__version__)" || echo "no PyAV: a mix with an H.264 pass will fail"
"$PY" -m training.pack unpack --pack .gpu/data --out cache/faces || exit 1
cp .gpu/init/*.safetensors resources/weights/
touch .gpu/started

# A run that overstays (start-up, final validation and export take well under a minute) is
# stopped, so the call ends inside the machine's 10-minute limit with the other runs' exports.
limit=$(awk -v m="$minutes" 'BEGIN { print int(m * 60 + 60) }')
pids=()
for cfg in "$@"; do
    name=$(basename "$cfg" .json)
    timeout "$limit" "$PY" -m training.train "$cfg" --minutes "$minutes" >"runs/$name.stdout" 2>&1 &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
    wait "$pid" || status=1
done
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader || true

# Only what the runs exported (newer than the start mark), never the float16 starting copies.
find resources/weights -newer .gpu/started -type f -printf '%P\n' >.gpu/exported.txt
tar -C resources/weights -cf .gpu/weights.tar -T .gpu/exported.txt
split -b 15M -d .gpu/weights.tar "$OUT/weights.tar.part-"
tar -czf "$OUT/logs.tar.gz" runs/*.stdout runs/*/train.log runs/*/summary.json 2>/dev/null
for cfg in "$@"; do
    name=$(basename "$cfg" .json)
    echo "== $name"
    grep -E "val step|final val|exported|Error|error" "runs/$name.stdout" | tail -n 4
done
exit $status
