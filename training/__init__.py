"""Training and benchmarking of the hosted models (imports engine, never app).

Commands (run from the repository root; CPU-heavy ones niced on the shared machine):

    python -m training.vgg convert                       # VGG-19 + LPIPS weights -> cache/vgg/
    nice -n 10 python -m training.data prepare --out cache/faces
    nice -n 5 python -m training.train training/configs/s2_rafsr_x4.json --minutes 95 [--resume]
    python -m training.train training/configs/s2_rafsr_x4.json --bench   # img/s fp32/bf16
    python -m training.evaluate --images cache/faces/test_png --aligned --scale 4 \\
        --models all --json runs/eval_x4.json --md runs/eval_x4.md

Modules: data (face cache, parsing maps, degradations), losses, vgg, metrics, config, train,
evaluate. Caches and runs live under cache/ and runs/ (git-ignored).
"""
