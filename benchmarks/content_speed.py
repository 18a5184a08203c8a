"""Content embedding speed: the text of 10,000 items at `prepare`, again from the cache, and images per second.

    python benchmarks/content_speed.py --json benchmarks/results/content_speed.json

1. A synthetic platform whose catalogue has about 10,000 items with descriptions (SyntheticConfig with
   description_words), prepared with `content: {embed_text: true}`: with MiniLM (the text extra), then the same
   preparation again with --force into the same directory (every vector from the cache), then with TF-IDF + SVD
   (text_dims auto, the default, and fixed at 64: what choosing the rank costs).
   The figures are the whole `prepare`'s seconds and the content step's share (the content report's counts).
2. `content: {align: cooccurrence}` (data/content.py): the TF-IDF preparation again with the alignment (what it
   adds to `prepare`), and `align_to_cooccurrence` alone on a log past its bounds (--align-users users with
   --align-likes liked rows each over --align-items items, 384-dimensional content: MiniLM's width), its seconds
   and this process's peak RSS, to show that its cost stops growing with the log (ALIGN_MAX_PAIRS, ALIGN_MAX_PRODUCTS,
   ALIGN_MAX_FIT).
3. EfficientNet-Lite0 over generated 224 x 224 photos-like images (random smooth colour fields, PNG), in batches
   of 64 (data/content.py): images per second, decode and resize included, after one warm-up batch.
Thread counts are set explicitly (MISTREC_BENCH_THREADS, default 2) and the load average is recorded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, THREADS, context, write_json


def _prepare_seconds(raw: Path, out: Path, encoder: str, force: bool, dims: int | str = "auto", align: str = "none"
                     ) -> tuple[float, dict[str, Any]]:
    from mistrec.data import load_dataset_config, prepare

    cfg = yaml.safe_load(raw.read_text())
    cfg["content"] = {"embed_text": True, "text_encoder": encoder, "text_dims": dims, "align": align}
    path = raw.with_name(f"dataset-{encoder}-{dims}-{align}.yaml")
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    t0 = time.perf_counter()
    manifest = prepare(load_dataset_config(path), out, quiet=True, force=force)
    report = manifest["content"]["items"]
    return time.perf_counter() - t0, {**report["blocks"][0], **({"aligned": report["aligned"]} if align != "none"
                                                                 else {})}


def _align_at_scale(users: int, items: int, likes: int, dims: int = 384) -> dict[str, Any]:
    """align_to_cooccurrence alone on a generated log: `users` each with `likes` liked rows over `items` items
    (drawn with replacement, popularity Zipf-like, so that co-occurrence is dense at the head and some rows repeat,
    as on real logs), random content."""
    from _common import PeakRss

    from mistrec.data.content import align_to_cooccurrence

    rng = np.random.default_rng(0)
    weight = 1.0 / np.arange(1, items + 1) ** 0.8
    item = rng.choice(items, users * likes, p=weight / weight.sum()) + 1
    user = np.repeat(np.arange(1, users + 1), likes)
    content = rng.normal(size=(items + 1, dims)).astype(np.float32)
    peak = PeakRss()
    before = peak.reset()
    t0 = time.perf_counter()
    _, report = align_to_cooccurrence(content, item, user)
    seconds = time.perf_counter() - t0
    return {"users": users, "items": items, "likes_per_user": likes, "content_dims": dims,
            "liked_rows": len(item), "seconds": round(seconds, 2), "rss_before_mb": round(before, 1),
            "peak_rss_mb": round(peak.final(), 1),
            **{k: report[k] for k in ("users_read", "pairs_read", "items_with_both", "items_fitted", "result")}}


def _images(folder: Path, n: int) -> list[str]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = []
    for i in range(n):
        small = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)  # smooth fields once upscaled
        Image.fromarray(small).resize((224, 224), Image.Resampling.BICUBIC).save(folder / f"img{i:04d}.png")
        names.append(f"img{i:04d}.png")
    return names


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--images", type=int, default=320)
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work" / "content-speed"))
    ap.add_argument("--align-users", type=int, default=200_000)
    ap.add_argument("--align-items", type=int, default=100_000)
    ap.add_argument("--align-likes", type=int, default=30)
    args = ap.parse_args()

    import torch

    from mistrec.data import SyntheticConfig, generate
    from mistrec.data.content import embed_image_block, image_model, minilm_available

    torch.set_num_threads(int(THREADS))
    os.environ.setdefault("POLARS_MAX_THREADS", THREADS)
    work = Path(args.work)
    doc: dict[str, Any] = {"context": context()}
    raw = work / "raw" / "dataset.yaml"
    if not raw.is_file():
        generate(SyntheticConfig(n_users=3000, events_per_user=60, pool_sizes=(4000, 3000, 2000, 1000),
                                 description_words=10, seed=0)).write(work / "raw")
    if minilm_available():
        shutil.rmtree(work / "prepared-minilm", ignore_errors=True)  # the first preparation finds no cache
        first, block = _prepare_seconds(raw, work / "prepared-minilm", "minilm", force=True)
        doc["text_items"] = block["rows_with"]
        again, block2 = _prepare_seconds(raw, work / "prepared-minilm", "minilm", force=True)
        doc["minilm"] = {"prepare_seconds_first": round(first, 2), "embedded_first": block["embedded"],
                         "prepare_seconds_cached": round(again, 2), "embedded_cached": block2["embedded"],
                         "cached": block2["cached"], "loadavg_after": [round(x, 2) for x in os.getloadavg()]}
        print(f"MiniLM: {block['rows_with']:,} items, prepare {first:.1f} s, again from the cache {again:.1f} s",
              flush=True)
    # text_dims auto (the default: parallel analysis, three more truncated SVDs of shuffled copies) and fixed at 64
    tfidf, block = _prepare_seconds(raw, work / "prepared-tfidf", "tfidf", force=True)
    fixed, block64 = _prepare_seconds(raw, work / "prepared-tfidf", "tfidf", force=True, dims=64)
    doc["tfidf"] = {"prepare_seconds": round(tfidf, 2), "dims": block["dims"], "dims_rule": block["dims_rule"],
                    "prepare_seconds_dims_64": round(fixed, 2), "dims_64": block64["dims"]}
    from mistrec.data import load_dataset_config, prepare

    t0 = time.perf_counter()
    prepare(load_dataset_config(raw), work / "prepared-none", quiet=True, force=True)
    doc["no_content_prepare_seconds"] = round(time.perf_counter() - t0, 2)
    print(f"TF-IDF: prepare {tfidf:.1f} s ({block['dims']} dims, auto), {fixed:.1f} s at 64; without content "
          f"{doc['no_content_prepare_seconds']:.1f} s", flush=True)
    aligned, block_al = _prepare_seconds(raw, work / "prepared-tfidf", "tfidf", force=True, align="cooccurrence")
    rep = block_al["aligned"]
    doc["align"] = {"prepare_seconds": round(aligned, 2), "prepare_seconds_without": round(tfidf, 2),
                    **{k: rep[k] for k in ("liked_rows", "users", "users_read", "pairs_read", "items_fitted",
                                           "result")},
                    "at_scale": _align_at_scale(args.align_users, args.align_items, args.align_likes)}
    print(f"align: prepare {aligned:.1f} s (without {tfidf:.1f} s); alone on {args.align_users:,} users x "
          f"{args.align_likes} of {args.align_items:,} items: {doc['align']['at_scale']['seconds']} s, peak RSS "
          f"{doc['align']['at_scale']['peak_rss_mb']} MB", flush=True)

    names = _images(work / "images", args.images)
    embed_image_block(names[:64], work / "images")  # warm-up: first load of the weights, first batch
    t0 = time.perf_counter()
    image_model()
    load = time.perf_counter() - t0
    t0 = time.perf_counter()
    m, report = embed_image_block(names, work / "images")  # loads the model again (`load` seconds) and embeds
    seconds = time.perf_counter() - t0
    assert report["embedded"] == args.images and m.shape == (args.images, 1280)
    doc["images"] = {"n": args.images, "seconds_with_model_load": round(seconds, 2), "model_load_seconds":
                     round(load, 2), "images_per_second": round(args.images / (seconds - load), 1),
                     "note": "read, decode, resize, normalise, EfficientNet-Lite0 in batches of 64; the model's "
                             "load time measured apart and taken out"}
    print(f"EfficientNet-Lite0: {doc['images']['images_per_second']} images/s", flush=True)
    doc["context_after"] = context()
    write_json(args.json, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
