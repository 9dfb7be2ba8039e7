"""Text items: a table of texts (CSV, Parquet or JSON lines) and the features a model trains on.

The annotator reads the text; the model trains on one of three feature sources:

- the built-in offline featuriser (the default, :func:`tfidf_svd_features`): latent semantic
  analysis, i.e. TF-IDF weights reduced by a truncated SVD (Deerwester, Dumais, Furnas, Landauer
  & Harshman, "Indexing by Latent Semantic Analysis", Journal of the American Society for
  Information Science 41(6), 1990), with sub-linear term frequency ``1 + log tf`` (Salton &
  Buckley, "Term-weighting approaches in automatic text retrieval", Information Processing &
  Management 24(5), 1988). Needs scikit-learn (``pip install 'activebatch[text]'``).
- a sentence-transformers model already on this machine (:func:`sentence_embeddings`, named by
  ``text_model``); nothing is ever downloaded.
- precomputed embeddings matched by id (``features=`` of :func:`activebatch.workspace.items.read_items`).

Every row of the table is one item (:func:`activebatch.workspace.items.read_text_items`); its
other columns are shown beside the text and are not features.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..utils.extras import require
from ..utils.validation import check_scalar
from .files import InputFileError, read_table

__all__ = ["TEXT_SUFFIXES", "TFIDF_DEFAULTS", "read_text_table", "tfidf_svd_features", "sentence_embeddings"]

#: Files a table of texts can come in.
TEXT_SUFFIXES = (".csv", ".parquet", ".pq", ".jsonl")

#: The featuriser's defaults (see :func:`tfidf_svd_features`).
TFIDF_DEFAULTS: dict[str, Any] = {"n_components": 100, "ngram_range": (1, 1), "min_df": 1, "max_features": 100_000}


# Reading -------------------------------------------------------------------------------------------
def read_text_table(path: str | Path) -> pd.DataFrame:
    """Read a table of texts: ``.csv``, ``.parquet``/``.pq`` or JSON lines (``.jsonl``).

    A CSV is read with every cell as text and no cell taken for a missing value except an empty
    one, so texts such as ``NA`` or ``None`` and ids such as ``007`` stay as written.

    Raises
    ------
    InputFileError
        When the file is missing, unreadable or has repeated column names.
    """
    p = Path(path)
    what = "items table"
    if not p.exists():
        raise InputFileError(f"{what} file {str(p)!r} does not exist")
    suffix = p.suffix.lower()
    if suffix not in TEXT_SUFFIXES:
        raise InputFileError(f"{what} file {str(p)!r}: texts come in a .csv, .parquet or .jsonl file, got "
                             f"{suffix or 'no suffix'!r}")
    if suffix in (".parquet", ".pq"):
        return read_table(p, what=what)
    try:
        if suffix == ".csv":
            frame = pd.read_csv(p, dtype=str, keep_default_na=False)
        else:
            # dtype=False: values keep their JSON types (no guessing of dates or numbers from text)
            frame = pd.read_json(p, lines=True, dtype=False, encoding="utf-8")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as exc:
        kind = "CSV" if suffix == ".csv" else "JSON-lines (one JSON object per line)"
        raise InputFileError(f"{what} file {str(p)!r} is not a readable {kind} file: {exc}") from exc
    frame.columns = [str(c) for c in frame.columns]
    if len(set(frame.columns)) != len(frame.columns):
        raise InputFileError(f"{what} file {str(p)!r} has repeated column names")
    return frame


# Features ------------------------------------------------------------------------------------------
def tfidf_svd_features(texts: list[str], *, n_components: int = TFIDF_DEFAULTS["n_components"], seed: int = 0,
                       ngram_range: tuple[int, int] = TFIDF_DEFAULTS["ngram_range"],
                       min_df: int = TFIDF_DEFAULTS["min_df"],
                       max_features: int | None = TFIDF_DEFAULTS["max_features"]) -> tuple[np.ndarray, dict]:
    """Latent semantic analysis features of texts: TF-IDF, truncated SVD, unit-length rows.

    1. TF-IDF (scikit-learn's ``TfidfVectorizer``): lower-cased, accents stripped, tokens of two
       or more word characters, word n-grams in ``ngram_range`` kept when in at least ``min_df``
       texts (the ``max_features`` most frequent ones); weight ``(1 + log tf) * idf`` with the
       smoothed ``idf = ln((1 + N) / (1 + df)) + 1``; each row scaled to unit length.
    2. Truncated SVD (``TruncatedSVD``, randomised, 5 power iterations, seeded) to
       ``d = min(n_components, N, V)`` dimensions (N texts, V terms): the rank of the TF-IDF
       matrix is at most ``min(N, V)``, so a small corpus or vocabulary keeps every dimension
       it has (and then the features' inner products are the TF-IDF cosines exactly).
    3. Each row scaled to unit length, so inner products are cosines in the latent space (as
       LSA compares documents); a text without any kept term is a zero row.

    Parameters
    ----------
    texts : list of str, length N
    n_components : int, default 100
        Upper bound on the dimension d; Deerwester et al. represent documents by "ca. 100"
        factors. With few labels, fewer dimensions train the workspace model better
        (``benchmarks/text_features.py``, ``docs/text.md``).
    seed : int, default 0
        Seeds the randomised SVD (the same texts and seed give the same features).
    ngram_range : (int, int), default (1, 1)
        Word n-grams; the default keeps single words, LSA's terms ((1, 2) adds word pairs).
    min_df : int, default 1
        Terms found in fewer texts are dropped.
    max_features : int or None, default 100000
        Vocabulary cap (the most frequent terms); None: no cap.

    Returns
    -------
    features : ndarray of float32, shape (N, d)
    info : dict
        ``method``, ``n_components`` (d), ``vocabulary`` (V), ``explained_variance`` (the share
        of the TF-IDF matrix's variance the d components keep) and the options used.

    Raises
    ------
    InputFileError
        When the texts hold fewer than two distinct terms.
    """
    text_mod = require("sklearn.feature_extraction.text", "text", "the built-in text featuriser (TF-IDF + SVD)")
    decomposition = require("sklearn.decomposition", "text", "the built-in text featuriser (TF-IDF + SVD)")
    n_components = check_scalar(n_components, "n_components", int, min_val=1)
    min_df = check_scalar(min_df, "min_df", int, min_val=1)
    seed = check_scalar(seed, "seed", int, min_val=0)
    max_features = check_scalar(max_features, "max_features", int, min_val=2, allow_none=True)
    lo, hi = (int(v) for v in ngram_range)
    if not 1 <= lo <= hi:
        raise ValueError(f"ngram_range must be (low, high) with 1 <= low <= high, got {ngram_range!r}")
    vectorizer = text_mod.TfidfVectorizer(sublinear_tf=True, strip_accents="unicode", lowercase=True,
                                          ngram_range=(lo, hi), min_df=min_df, max_features=max_features,
                                          dtype=np.float64)
    try:
        tfidf = vectorizer.fit_transform(texts)
    except ValueError as exc:   # "empty vocabulary": no text holds a kept term
        raise InputFileError(f"the texts hold no words to build features from ({exc})") from None
    n, vocab = tfidf.shape
    if vocab < 2:
        raise InputFileError(f"the texts hold {vocab} distinct term(s); the text features need at least 2")
    d = min(n_components, n, vocab)
    # sklearn takes a 32-bit seed; derive it from the given one rather than truncating it
    state = int(np.random.SeedSequence(seed).generate_state(1)[0])
    svd = decomposition.TruncatedSVD(n_components=d, algorithm="randomized", n_iter=5, random_state=state)
    Z = svd.fit_transform(tfidf)
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    Z = np.divide(Z, norms, out=np.zeros_like(Z), where=norms > 0)
    info = {"method": "tfidf-svd", "n_components": int(d), "vocabulary": int(vocab), "seed": int(seed),
            "ngram_range": [lo, hi], "min_df": int(min_df), "max_features": max_features, "sublinear_tf": True,
            "explained_variance": round(float(np.sum(svd.explained_variance_ratio_)), 6),
            # the workspace model scales these features together, not one by one (see feature_stats)
            "common_scale": True}
    return Z.astype(np.float32), info


def sentence_embeddings(texts: list[str], model: str, *, device: str = "auto", batch_size: int = 64) -> np.ndarray:
    """Unit-length sentence embeddings from a sentence-transformers model found on this machine.

    Parameters
    ----------
    texts : list of str, length N
    model : str
        A model name in the local Hugging Face cache, or the folder of a saved model. It is
        loaded with ``local_files_only=True``: nothing is downloaded.
    device : str, default "auto"
        "auto": CUDA when available, else the CPU.
    batch_size : int, default 64

    Returns
    -------
    ndarray of float32, shape (N, D)
        One row per text, scaled to unit length (the model's embedding width D).

    Raises
    ------
    MissingExtraError
        When sentence-transformers is not installed.
    InputFileError
        When the model is not available locally (or cannot be loaded).
    """
    from ..learning.learner import resolve_device

    st = require("sentence_transformers", "text-models", f"--text-model {model!r}")
    batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
    dev = str(resolve_device(device))
    try:
        encoder = st.SentenceTransformer(model, device=dev, local_files_only=True)
    except Exception as exc:   # the hub, transformers and torch each fail their own way
        raise InputFileError(
            f"--text-model {model!r} is not available on this machine ({type(exc).__name__}: {exc}); activebatch "
            "never downloads models: give the folder of a saved model, or a name already in the Hugging Face "
            "cache (download it beforehand where the network is allowed)") from exc
    X = encoder.encode(list(texts), batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True,
                       normalize_embeddings=True)
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] != len(texts):
        raise InputFileError(f"--text-model {model!r} gave embeddings of shape {X.shape} for {len(texts)} texts")
    return X
