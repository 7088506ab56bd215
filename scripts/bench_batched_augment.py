"""Images/s of per-image torchvision augmentation vs accord's batched per-image-random policies, on one core.

Both run side by side in one process, interleaved round by round on the same random uint8 images; the ratio is
the median over rounds of the per-round ratio, so drift in the machine's load cancels as far as it can.

    python scripts/bench_batched_augment.py                      # RandAugment(2, 14) at 32 and 224 px
    python scripts/bench_batched_augment.py --policy trivialaug --sizes 32 --rounds 9 --device cuda
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torchvision.transforms import v2

from accord.views.batched_policies import build_batched_operation

PER_IMAGE = {
    "randaug": lambda: v2.RandAugment(num_ops=2, magnitude=14),
    "trivialaug": v2.TrivialAugmentWide,
    "autoaug": lambda: v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10),
    "augmix": v2.AugMix,
}
BATCHED = {"randaug": "randaug_2_14", "trivialaug": "trivialaug", "autoaug": "autoaug_cifar10", "augmix": "augmix"}


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(policy: str, size: int, batch: int, rounds: int, device: str) -> dict[str, float]:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=g)
    autoaugment = "cifar10" if size <= 32 else "imagenet"
    per_image, batched = PER_IMAGE[policy](), build_batched_operation(BATCHED[policy], autoaugment)
    on_device = images.to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def run_batched() -> None:
        batched(on_device)
        sync()

    runs = {"per_image": lambda: [per_image(img) for img in images], "batched": run_batched}
    for fn in runs.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            times[name].append(_seconds(fn))
    ratios = [p / b for p, b in zip(times["per_image"], times["batched"], strict=True)]
    return {
        "per_image_images_per_s": batch / statistics.median(times["per_image"]),
        "batched_images_per_s": batch / statistics.median(times["batched"]),
        "ratio_median_of_rounds": statistics.median(ratios),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", choices=sorted(PER_IMAGE), default="randaug")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 224])
    parser.add_argument("--batch", type=int, default=0, help="images per round (default: 512 at <= 32 px, else 32)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: a per-core figure)")
    parser.add_argument("--device", default="cpu", help="where the batched policy runs (per-image: always CPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for size in args.sizes:
        batch = args.batch or (512 if size <= 32 else 32)
        results[f"{size}px"] = {"batch": batch, **measure(args.policy, size, batch, args.rounds, args.device)}
    print(json.dumps({"policy": args.policy, "threads": args.threads, "device": args.device, **results}, indent=2))


if __name__ == "__main__":
    main()
