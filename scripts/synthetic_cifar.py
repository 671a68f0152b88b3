#!/usr/bin/env python3
"""Writes a small random data set in CIFAR-10's binary layout (data_batch_1..5.bin,
test_batch.bin, batches.meta.txt): records of one label byte and 3,072 pixel bytes.
For checking a machine end to end where the real data set is not at hand; the images
are noise, so accuracies on it mean nothing.

    python3 scripts/synthetic_cifar.py DIR [--per-batch 200]
"""

import argparse
import os
import random


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dir")
    parser.add_argument("--per-batch", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.dir, exist_ok=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name in names:
        with open(os.path.join(args.dir, name), "wb") as f:
            for _ in range(args.per_batch):
                f.write(bytes([rng.randrange(10)]))
                f.write(rng.randbytes(3072))
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
               "ship", "truck"]
    with open(os.path.join(args.dir, "batches.meta.txt"), "w") as f:
        f.write("\n".join(classes) + "\n")
    print(f"wrote {len(names)} files of {args.per_batch} random images into {args.dir}")


if __name__ == "__main__":
    main()
