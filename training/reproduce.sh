#!/usr/bin/env bash
# Remake every shipped weight file, the quality benchmarks, the results table and the montages,
# in the order they depend on each other (a GAN fine-tune starts from its PSNR twin's export).
#
#   bash training/reproduce.sh [DATASETS]      # DATASETS defaults to ../shared/datasets
#
# Each config's "minutes" is its wall-clock budget. The first stages ran on one CPU thread (two
# runs at a time on a 2-core VM); the *_gpu and *_gpu2 stages ran on a borrowed NVIDIA H200,
# nine runs sharing it, and the *_gpu3 and *_wide_gpu* stages on an NVIDIA H100 (session 10),
# sent there by training/gpu_stage.sh with the faces packed as WebP (training/pack.py). Without
# a GPU those stages still run, but see about 1% of the steps: to match the shipped files, run
# them on a GPU (here, or with training/gpu_stage.sh).
# Add --resume to a train line to continue an interrupted run.
set -euo pipefail
cd "$(dirname "$0")/.."
DATASETS=${1:-../shared/datasets}
PY=.venv/bin/python

[ -f cache/vgg/vgg19_features.safetensors ] || $PY -m training.vgg convert
[ -f cache/faces/train_hr.npy ] || $PY -m training.data prepare --datasets "$DATASETS" --out cache/faces

PSNR="s2_rafsr_x4 s2_rafsr_x8 s0_srresnet_att_x4 s0_srresnet_att_x8 s4_idrn_x4 s4_idrn_x8
      s3_prior_guided_x4 s3_prior_guided_x8 s1_mffcn"
# Second stages: start from the first stage's export and overwrite it (the record keeps both).
LONG="s4_idrn_x4_long s4_idrn_x8_long s3_prior_guided_x4_long s3_prior_guided_x8_long"
# GPU stages: every PSNR model again from its export, 7.5 min, then 3.25 min at a lower rate.
GPU=""
for cfg in $PSNR; do GPU="$GPU ${cfg}_gpu"; done
for cfg in $PSNR; do GPU="$GPU ${cfg}_gpu2"; done
# CPU stages after the GPU ones (session 5): half of each batch from the sharp CelebAMask-HQ
# training faces, a gentle cycle from 5e-5; only for the models without a GAN twin.
CELEBA="s4_idrn_x4_celeba s2_rafsr_x8_celeba s1_mffcn_celeba s4_idrn_x8_celeba"
# Session 6: S1 once more, the same mix, with x4 and x8 a third of the batches each.
CELEBA="$CELEBA s1_mffcn_scalemix"
# Session 7: S3's SR branch grown from 6 to the paper's 16 basic blocks (training.train grow);
# session 9: S0 x4 from 8 to the paper's 16 residual blocks.
GROW="s3_prior_guided_x4_grow s3_prior_guided_x8_grow s0_srresnet_att_x4_grow"
# GAN fine-tunes start from their PSNR twin's final file, so each comes after its twin's last
# stage: S0's before session 10's GPU stage (which moved S0 on without refitting its GAN twins).
GAN0="s0_srresnet_att_gan_x4_grown s0_srresnet_att_gan_x8_celeba"
# Session 10, an NVIDIA H100 through training/gpu_stage.sh: S0 and S2 continued (8.25 min, eight
# runs sharing the GPU; S4's two runs were not shipped), S3's SR branch widened from 32 to the
# paper's 64 channels (grow), then S3 x8 alone for 3 more minutes.
GPU3="s0_srresnet_att_x4_gpu3 s0_srresnet_att_x8_gpu3 s2_rafsr_x4_gpu3 s2_rafsr_x8_gpu3
      s3_prior_guided_x4_wide_gpu s3_prior_guided_x8_wide_gpu s3_prior_guided_x8_wide_gpu2"
GAN3="s3_prior_guided_gan_x4_wide"
# Session 11, the CPU with bf16: S0 x4 and S3 x8 continued, then S3 x8's GAN refit from the new
# twin (session 10's x8 GAN, s3_prior_guided_gan_x8_wide, is no longer behind a shipped file).
CPU4="s0_srresnet_att_x4_cpu4 s3_prior_guided_x8_wide_cpu s3_prior_guided_gan_x8_cpu"
# Session 12 (issue 24), the CPU: robust variants fine-tuned from the files above on the
# degradation mix of training/degrade.py (their cards say how far each got).
# Sessions 13-14: every other paper and x8; sessions 15-16: second stages (*_long) from the
# robust files themselves.
ROBUST_FIRST="s2_rafsr_robust_x4 s4_idrn_robust_x4"
ROBUST="s0_srresnet_att_robust_x4 s4_idrn_robust_x8
        s1_mffcn_robust s3_prior_guided_robust_x4 s3_prior_guided_robust_x8
        s0_srresnet_att_robust_x8 s2_rafsr_robust_x8
        s0_srresnet_att_robust_x4_long s3_prior_guided_robust_x8_long s1_mffcn_robust_long
        s2_rafsr_robust_x4_long s4_idrn_robust_x4_long"
# Sessions 17-18: further stages; s4_idrn_robust_x4_logmse on the log_mse loss (per-face dB).
ROBUST="$ROBUST s4_idrn_robust_x4_long2 s1_mffcn_robust_long2 s4_idrn_robust_x4_long3
        s3_prior_guided_robust_x4_long s4_idrn_robust_x4_logmse"
# Session 19: S3 x4's third stage on log_mse.
ROBUST="$ROBUST s3_prior_guided_robust_x4_logmse"
# Session 20: S1's fourth stage on log_mse (started in session 19, resumed).
ROBUST="$ROBUST s1_mffcn_robust_logmse"
# Issue 23: S4 and S0 at x2, every tensor of the x2 network from the x4 file (init_partial).
X2="s4_idrn_x2 s0_srresnet_att_x2"
# Session 18: S4's robust x2 from its clean x2 file, on mix_wide with the log_mse loss.
X2="$X2 s4_idrn_robust_x2_logmse"
# Session 19: S0's robust x2, the same recipe (log_mse) with its landmark term.
X2="$X2 s0_srresnet_att_robust_x2"
# Issue 24: the x1 restore, from the first robust x4 stage's file (its head and units; no
# upsampler), so it runs right after that stage, before the later S4 stages overwrite the file.
X1="s4_idrn_restore_x1"
for cfg in $PSNR $LONG $GPU $CELEBA $GROW $GAN0 $GPU3 $GAN3 $CPU4 $ROBUST_FIRST $X1 $ROBUST $X2; do
    $PY -m training.train "training/configs/$cfg.json"
done
# Session 21, an NVIDIA H200 through training/gpu_stage.sh (PyAV and 5,300 of the training faces
# travel packed, see its header): the robust files on mix_wide, six runs sharing the GPU for 7.5
# minutes (S1 grown from 16 to 32 channels per branch; its export goes to resources/weights/wide/
# so that it could be compared with the 16-channel run beside it, s1_mffcn_robust_gpu, which was
# not shipped), then S1 and S3 x4 2.5 minutes more from those files.
for cfg in s1_mffcn_robust_wide_gpu s3_prior_guided_robust_x4_gpu s0_srresnet_att_robust_x4_gpu \
    s4_idrn_robust_x4_gpu s0_srresnet_att_robust_x2_gpu; do
    $PY -m training.train "training/configs/$cfg.json"
done
cp resources/weights/wide/s1_mffcn_robust.safetensors resources/weights/  # gpu2's init_from
for cfg in s1_mffcn_robust_wide_gpu2 s3_prior_guided_robust_x4_gpu2; do
    $PY -m training.train "training/configs/$cfg.json"
done
cp resources/weights/wide/s1_mffcn_robust* resources/weights/ && rm -r resources/weights/wide
$PY -c "from engine import weights; weights.update_manifest('resources/weights/s1_mffcn_robust.safetensors')"
# Session 22 (CPU): S3 robust x4 rebuilt with fuse_residual (final SR = coarse SR + the fusing
# module's correction), every tensor from the session-21 file but the fusing module's output conv.
$PY -m training.train training/configs/s3_prior_guided_robust_x4_fuse.json

for scale in 4 8; do
    $PY -m training.evaluate --images cache/faces/test_png --aligned --scale $scale --models all \
        --json benchmarks/quality_x$scale.json --md benchmarks/quality_x$scale.md
done
# Clean and degraded input side by side (training/degrade.py's families, the same LR per face
# for every model): bicubic, the clean-trained twins and their robust variants.
# (lower case: not a list of configs)
twins="bicubic,s0_srresnet_att,s0_srresnet_att_robust,s1_mffcn,s1_mffcn_robust,s2_rafsr,s2_rafsr_robust"
twins="$twins,s3_prior_guided,s3_prior_guided_robust,s4_idrn,s4_idrn_robust"
for scale in 4 8; do
    $PY -m training.evaluate --images cache/faces/test_png --aligned --scale $scale --degrade all \
        --models $twins --json benchmarks/degraded_x$scale.json --md benchmarks/degraded_x$scale.md
done
# Damage the training mix never draws (a generalisation check, not an aim).
$PY -m training.evaluate --images cache/faces/test_png --aligned --scale 4 --degrade unseen \
    --models $twins --json benchmarks/degraded_x4.json --md benchmarks/degraded_x4.md
# x2 and x3 (issue 23, clean LR): S1 serves both, S4 has an x2 file and a robust x2 file.
$PY -m training.evaluate --images cache/faces/test_png --aligned --scale 2 --degrade all \
    --models bicubic,s4_idrn_robust,s0_srresnet_att_robust --json benchmarks/degraded_x2.json --md benchmarks/degraded_x2.md
$PY -m training.evaluate --images cache/faces/test_png --aligned --scale 2 --degrade unseen \
    --models bicubic,s4_idrn_robust,s0_srresnet_att_robust --json benchmarks/degraded_x2.json --md benchmarks/degraded_x2.md
$PY -m training.evaluate --images cache/faces/test_png --aligned --scale 2 --degrade clean \
    --models bicubic,s1_mffcn,s4_idrn,s0_srresnet_att --json benchmarks/degraded_x2.json --md benchmarks/degraded_x2.md
$PY -m training.evaluate --images cache/faces/test_png --aligned --scale 3 --degrade clean \
    --models bicubic,s1_mffcn --json benchmarks/degraded_x3.json --md benchmarks/degraded_x3.md
# x1 restore (issue 24): the damaged input itself against the restoration, each family's damage
# at the face's own size.
$PY -m training.evaluate --images cache/faces/test_png --aligned --scale 1 --degrade all \
    --models all --json benchmarks/restore_x1.json --md benchmarks/restore_x1.md
$PY -m training.results_table
$PY scripts/montage.py --faces cache/faces/test_png --realworld "$DATASETS/realworld_lq"
