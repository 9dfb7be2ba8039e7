"""Text items in workspaces: the TF-IDF + SVD featuriser, CSV / JSON-lines / Parquet tables of
texts, the init -> query -> label -> query cycle, exports, and clear errors."""
import json
import re
import sys
import types

import numpy as np
import pandas as pd
import pytest

from activebatch.cli import main
from activebatch.utils.extras import MissingExtraError
from activebatch.workspace import InputFileError, ModelConfig, Workspace, read_items
from activebatch.workspace.formats import label_studio_tasks
from activebatch.workspace.items import read_text_items
from activebatch.workspace.server import LabelService
from activebatch.workspace.text import tfidf_svd_features
from workspace_fixtures import label_studio_export, write_labels

CLASSES = ["sports", "cooking"]
# Two topics with vocabularies that share no word: a text's topic is its class.
VOCAB = {
    "sports": "football goal match referee striker penalty league coach stadium team season player".split(),
    "cooking": "recipe oven flour butter sugar bake dough whisk simmer sauce garlic onion".split(),
}


def make_texts(n=40, seed=0):
    """``n`` texts of 8 words, alternately from each topic; (frame with id, text, source; truth)."""
    rng = np.random.default_rng(seed)
    ids, texts, truth = [], [], {}
    for i in range(n):
        topic = CLASSES[i % 2]
        ids.append(f"t{i:03d}")
        texts.append(" ".join(rng.choice(VOCAB[topic], size=8)))
        truth[ids[-1]] = topic
    return pd.DataFrame({"id": ids, "text": texts, "source": "made up"}), truth


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


# The featuriser -----------------------------------------------------------------------------------
def hand_tfidf(texts):
    """Unigram TF-IDF as the featuriser defines it, computed directly: (1 + ln tf) * (ln((1+N)/(1+df)) + 1),
    rows scaled to unit length; returns (matrix (N, V), vocabulary)."""
    tokens = [re.findall(r"\b\w\w+\b", t.lower()) for t in texts]
    vocab = sorted({w for ts in tokens for w in ts})
    tf = np.array([[ts.count(w) for w in vocab] for ts in tokens], dtype=float)
    df = (tf > 0).sum(0)
    n = len(texts)
    w = np.where(tf > 0, 1 + np.log(np.where(tf > 0, tf, 1)), 0.0) * (np.log((1 + n) / (1 + df)) + 1)
    return w / np.linalg.norm(w, axis=1, keepdims=True), vocab


CORPUS = ["the striker scored a goal goal goal", "a goal in the match", "bake the dough in the oven",
          "whisk butter and sugar, then bake", "the coach of the team", "simmer the sauce with garlic and onion",
          "the referee stopped the match"]


def test_full_rank_features_keep_the_tfidf_cosines():
    T, vocab = hand_tfidf(CORPUS)
    X, info = tfidf_svd_features(CORPUS, seed=3)
    # rank <= min(N, V) = N: all 7 dimensions are kept, and the unit rows' inner products are the
    # TF-IDF cosines exactly
    assert X.shape == (7, 7) and X.dtype == np.float32
    assert info["vocabulary"] == len(vocab) and info["n_components"] == 7
    assert info["explained_variance"] == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(X @ X.T, T @ T.T, atol=1e-5)


def test_truncated_features_are_the_leading_singular_directions():
    T, _ = hand_tfidf(CORPUS)
    X, info = tfidf_svd_features(CORPUS, n_components=3, seed=0)
    U, S, _ = np.linalg.svd(T, full_matrices=False)
    G = U[:, :3] * S[:3]
    G /= np.linalg.norm(G, axis=1, keepdims=True)
    assert X.shape == (7, 3) and info["n_components"] == 3
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(X @ X.T, G @ G.T, atol=1e-4)   # the same rows, up to each axis' sign
    assert info["explained_variance"] < 1.0


def test_featuriser_is_deterministic_and_its_shape_follows_the_caps():
    frame, truth = make_texts(40)
    texts = frame["text"].tolist()
    a, info = tfidf_svd_features(texts, n_components=8, seed=7)
    b, _ = tfidf_svd_features(texts, n_components=8, seed=7)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (40, 8) and info["seed"] == 7 and info["ngram_range"] == [1, 1]
    # the default 100 is capped by the vocabulary (24 words) ...
    X, info = tfidf_svd_features(texts)
    assert X.shape == (40, 24) and info["vocabulary"] == 24
    # ... and by the number of texts (40 < 24 words and their pairs)
    assert tfidf_svd_features(texts, ngram_range=(1, 2))[0].shape == (40, 40)
    # texts of one topic are closer to each other than to the other topic's
    y = np.array([truth[i] == "sports" for i in frame["id"]])
    cos = a @ a.T
    assert cos[np.ix_(y, y)].mean() > 0.5 > cos[np.ix_(y, ~y)].mean()


def test_featuriser_options_are_checked():
    with pytest.raises(ValueError, match="n_components must be an integer >= 1"):
        tfidf_svd_features(CORPUS, n_components=0)
    with pytest.raises(ValueError, match="ngram_range"):
        tfidf_svd_features(CORPUS, ngram_range=(2, 1))
    with pytest.raises(InputFileError, match="hold no words"):
        tfidf_svd_features(["!!", "? ?", "a"])
    with pytest.raises(InputFileError, match="at least 2"):
        tfidf_svd_features(["hello", "hello hello"])


# The cycle -------------------------------------------------------------------------------------------
def test_text_workspace_init_query_label_query(tmp_path, capsys):
    frame, truth = make_texts(40)
    frame.to_csv(tmp_path / "texts.csv", index=False)
    ids = frame["id"].tolist()
    write_labels(tmp_path / "init.csv", ids[:4], truth)                 # two of each topic
    write_labels(tmp_path / "eval.csv", ids[-10:], truth)
    ws = tmp_path / "ws"
    code, out, err = run(capsys, "init", ws, "--items", tmp_path / "texts.csv", "--text-column", "text",
                         "--classes", ",".join(CLASSES), "--labels", tmp_path / "init.csv", "--eval-labels",
                         tmp_path / "eval.csv", "--text-dim", 16, "--max-epochs", 40)
    assert code == 0, err
    assert "40 text items" in out and "4 training and 10 evaluation labels" in out
    assert "text features: TF-IDF + SVD, 16 dimensions" in out and "width 256" in out

    code, out, err = run(capsys, "query", ws, "-n", 6, "--strategy", "margin")
    assert code == 0, err
    assert "round 1: margin chose 6" in out
    first = Workspace(ws).batch(1)["item_id"].tolist()
    assert not set(first) & set(ids[:4] + ids[-10:])

    # Label Studio: the text interface, the text in each task, the labels back in
    code, out, err = run(capsys, "export", ws, "--format", "json", "--out", tmp_path / "r1.json")
    assert code == 0, err
    tasks = json.loads((tmp_path / "r1.json").read_text())
    text_of = dict(zip(frame["id"], frame["text"]))
    assert [t["data"]["activebatch_id"] for t in tasks] == first
    assert all(t["data"]["text"] == text_of[t["data"]["activebatch_id"]] and t["data"]["source"] == "made up"
               for t in tasks)
    assert tasks[0]["predictions"][0]["result"][0]["to_name"] == "text"
    config = (tmp_path / "r1.label_config.xml").read_text()
    assert '<Text name="text" value="$text"/>' in config and '<Choices name="label" toName="text"' in config
    assert '<Choice value="cooking"/>' in config
    (tmp_path / "ls.json").write_text(json.dumps(label_studio_export(tasks, truth)))
    code, out, err = run(capsys, "import", ws, tmp_path / "ls.json")
    assert code == 0, err
    assert "6 new label(s)" in out

    code, out, err = run(capsys, "query", ws, "-n", 6, "--strategy", "margin")
    assert code == 0, err
    assert "round 2: margin chose 6" in out and "held-out accuracy" in out
    second = Workspace(ws).batch(2)
    assert second["label"].isna().all()
    assert not set(second["item_id"]) & set(first + ids[:4] + ids[-10:])
    assert Workspace(ws).status(plot=False).eval_accuracy is not None

    code, out, err = run(capsys, "export", ws, "--out", tmp_path / "r2.csv")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "r2.csv", dtype=str)
    assert table["text"].tolist() == [text_of[i] for i in second["item_id"]]


def test_jsonl_and_parquet_tables_give_the_same_items(tmp_path):
    frame, truth = make_texts(24)
    frame["label"] = [truth[i] if k % 3 == 0 else None for k, i in enumerate(frame["id"])]
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict("records")))
    made = {}
    for suffix in ("csv", "parquet", "jsonl"):
        made[suffix] = Workspace.create(tmp_path / f"ws-{suffix}", tmp_path / f"t.{suffix}", CLASSES,
                                        text_column="text", label_column="label", text_dim=8)
    ref = made["csv"]
    assert ref.kind == "text" and len(ref) == 24
    for ws in made.values():
        assert ws.store.items()["item_id"].tolist() == frame["id"].tolist()
        np.testing.assert_array_equal(ws.store.features(), ref.store.features())
        labels = ws.labels()
        assert dict(zip(labels["item_id"], labels["label"])) == {i: truth[i] for i in frame["id"][::3]}
        display = ws.store.item(5)["display"]
        assert display == {"id": "t005", "text": frame["text"][5], "source": "made up"}


def test_jsonl_with_numeric_ids_and_texts_that_look_like_missing_values(tmp_path):
    rows = [{"n": 7, "body": "NA"}, {"n": 8, "body": "None of the football matches"},
            {"n": 9, "body": "bake the dough"}, {"n": 10, "body": "null"}]
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    items = read_items(tmp_path / "t.jsonl", text_column="body", id_column="n")
    assert items.ids.tolist() == ["7", "8", "9", "10"]
    assert [d["body"] for d in items.displays] == ["NA", "None of the football matches", "bake the dough", "null"]
    pd.DataFrame(rows).to_csv(tmp_path / "t.csv", index=False)
    items = read_items(tmp_path / "t.csv", text_column="body", id_column="n")
    assert [d["body"] for d in items.displays] == ["NA", "None of the football matches", "bake the dough", "null"]


def test_precomputed_embeddings_matched_by_id(tmp_path):
    frame, _ = make_texts(10)
    frame.to_csv(tmp_path / "t.csv", index=False)
    emb = np.random.default_rng(0).normal(size=(10, 5)).astype(np.float32)
    order = np.arange(10)[::-1]
    np.savez(tmp_path / "emb.npz", embeddings=emb[order], ids=frame["id"].to_numpy(dtype=str)[order])
    ws = Workspace.create(tmp_path / "ws", tmp_path / "t.csv", CLASSES, text_column="text",
                          features=tmp_path / "emb.npz")
    assert ws.kind == "text"
    np.testing.assert_array_equal(ws.store.features(), emb)
    assert ws.store.item(0)["display"]["text"] == frame["text"][0]


# Errors ------------------------------------------------------------------------------------------
def test_bad_text_tables_are_refused_clearly_and_leave_no_workspace(tmp_path, capsys):
    frame, _ = make_texts(8)
    frame.to_csv(tmp_path / "t.csv", index=False)
    code, _, err = run(capsys, "init", tmp_path / "ws", "--items", tmp_path / "t.csv", "--text-column", "body",
                       "--classes", "a,b")
    assert code == 2 and "Traceback" not in err
    assert "has no column 'body' (given as --text-column); columns: id, text, source" in err
    assert not (tmp_path / "ws" / "workspace.sqlite").exists()

    gaps = frame.copy()
    gaps.loc[3, "text"] = ""
    gaps.loc[6, "text"] = "   "
    gaps.to_csv(tmp_path / "gaps.csv", index=False)
    with pytest.raises(InputFileError, match=r"2 item\(s\) have an empty text in column 'text', the first 't003' "
                                             r"\(row 3\)"):
        read_items(tmp_path / "gaps.csv", text_column="text")
    (tmp_path / "null.jsonl").write_text('{"id": "a", "text": "one text"}\n{"id": "b", "text": null}\n')
    with pytest.raises(InputFileError, match=r"1 item\(s\) have an empty text .* the first 'b' \(row 1\)"):
        read_items(tmp_path / "null.jsonl", text_column="text")
    (tmp_path / "obj.jsonl").write_text('{"id": "a", "text": "one text"}\n{"id": "b", "text": {"x": 1}}\n')
    with pytest.raises(InputFileError, match="column 'text' of item 'b' .* expected a text"):
        read_items(tmp_path / "obj.jsonl", text_column="text")
    (tmp_path / "bad.jsonl").write_text('{"id": "a", "text": "one"}\nnot json\n')
    with pytest.raises(InputFileError, match="not a readable JSON-lines"):
        read_items(tmp_path / "bad.jsonl", text_column="text")
    with pytest.raises(InputFileError, match="JSON-lines file holds text items; name the field"):
        read_items(tmp_path / "null.jsonl")
    np.save(tmp_path / "x.npy", np.zeros((3, 2)))
    with pytest.raises(InputFileError, match="--text-column needs a .csv, .parquet or .jsonl table"):
        read_items(tmp_path / "x.npy", text_column="text")
    with pytest.raises(InputFileError, match="--text-model embeds text items: name the column"):
        read_items(tmp_path / "t.csv", text_model="some-model")
    with pytest.raises(InputFileError, match="--text-model or --features, not both"):
        read_items(tmp_path / "t.csv", text_column="text", text_model="m", features=tmp_path / "x.npy")
    with pytest.raises(InputFileError, match="--ignore-columns applies to table items"):
        read_items(tmp_path / "t.csv", text_column="text", ignore_columns=["source"])
    with pytest.raises(InputFileError, match="cannot also be the id or label column"):
        read_items(tmp_path / "t.csv", text_column="text", label_column="text")


def test_missing_scikit_learn_names_the_text_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.feature_extraction.text", None)   # as if not installed
    with pytest.raises(MissingExtraError, match=r"text featuriser .* needs scikit-learn, which is not installed: "
                                                r"pip install 'activebatch\[text\]'"):
        tfidf_svd_features(CORPUS)


# Sentence-transformers models: never downloaded; only the errors and the wiring are tested ---------
def test_text_model_without_the_package_names_its_extra(tmp_path, monkeypatch):
    make_texts(4)[0].to_csv(tmp_path / "t.csv", index=False)
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(MissingExtraError, match=r"--text-model 'all-MiniLM-L6-v2' needs sentence-transformers, which "
                                                r"is not installed: pip install 'activebatch\[text-models\]'"):
        read_items(tmp_path / "t.csv", text_column="text", text_model="all-MiniLM-L6-v2")


def fake_sentence_transformers(monkeypatch, *, local_models=()):
    """A stand-in module: models in ``local_models`` load (and record how); others fail as the
    library does for a model missing from the local cache with ``local_files_only=True``."""
    calls = []

    class SentenceTransformer:
        def __init__(self, name, **kwargs):
            calls.append((name, kwargs))
            if name not in local_models:
                raise OSError(f"We couldn't connect to the hub or find {name} in the cached files")

        def encode(self, texts, **kwargs):
            calls.append(("encode", kwargs))
            return np.array([[len(t), 1.0, 0.0] for t in texts]) / np.array([[len(t) ** 2 + 1.0] for t in texts]) ** .5

    module = types.ModuleType("sentence_transformers")
    module.SentenceTransformer = SentenceTransformer
    monkeypatch.setitem(sys.modules, "sentence_transformers", module)
    return calls


def test_text_model_not_on_this_machine_is_refused_clearly(tmp_path, monkeypatch, capsys):
    make_texts(4)[0].to_csv(tmp_path / "t.csv", index=False)
    calls = fake_sentence_transformers(monkeypatch)
    code, _, err = run(capsys, "init", tmp_path / "ws", "--items", tmp_path / "t.csv", "--text-column", "text",
                       "--classes", "a,b", "--text-model", "no-such-model", "--device", "cpu")
    assert code == 2 and "Traceback" not in err
    assert "--text-model 'no-such-model' is not available on this machine" in err and "never downloads" in err
    assert calls == [("no-such-model", {"device": "cpu", "local_files_only": True})]
    assert not (tmp_path / "ws" / "workspace.sqlite").exists()


def test_a_local_text_model_gives_the_features(tmp_path, monkeypatch):
    frame, _ = make_texts(6)
    frame.to_csv(tmp_path / "t.csv", index=False)
    calls = fake_sentence_transformers(monkeypatch, local_models=("my-model",))
    ws = Workspace.create(tmp_path / "ws", tmp_path / "t.csv", CLASSES, text_column="text", text_model="my-model",
                          model=ModelConfig(device="cpu"))
    lens = frame["text"].str.len().to_numpy(dtype=float)
    expected = np.stack([lens, np.ones(6), np.zeros(6)], 1) / np.sqrt(lens ** 2 + 1)[:, None]
    np.testing.assert_allclose(ws.store.features(), expected, rtol=1e-6)
    assert calls[0] == ("my-model", {"device": "cpu", "local_files_only": True})
    assert calls[1][1]["normalize_embeddings"] is True
    info = ws.store.meta()["items_info"]["text_features"]
    assert info == {"method": "sentence-transformers", "model": "my-model", "dim": 3}


# What annotators see ------------------------------------------------------------------------------
def test_page_api_and_label_studio_tasks_hold_the_text(tmp_path):
    frame, _ = make_texts(6)
    frame = frame.rename(columns={"text": "body", "source": "text"})   # a column named text that is not the text
    frame.to_csv(tmp_path / "t.csv", index=False)
    items = read_text_items(tmp_path / "t.csv", text_column="body", n_components=4)
    ws = Workspace.create(tmp_path / "ws", items, CLASSES)
    ws.query(2)
    got = LabelService(ws.folder).next_item("ann", [])["item"]
    body = dict(zip(frame["id"], frame["body"]))
    assert got["kind"] == "text" and got["text"] == body[got["id"]] and got["image"] is None
    assert got["row"] == {"id": got["id"], "text": "made up"}

    batch = ws.batch(1)
    tasks = label_studio_tasks(batch, kind="text", image_url=str, text_key="body")
    assert [t["data"]["text"] for t in tasks] == [body[i] for i in batch["item_id"]]
    assert tasks[0]["data"]["item.text"] == "made up" and "body" not in tasks[0]["data"]
    with pytest.raises(ValueError, match="text_key"):
        label_studio_tasks(batch, kind="text", image_url=str)
