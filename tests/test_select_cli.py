"""`activebatch select`: choosing a batch from model outputs stored in files."""
import numpy as np
import pandas as pd
import pytest

import activebatch as ab
from activebatch.cli import main
from activebatch.cli.select import array_fields, file_strategies
from conftest import make_evidence


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def flag(field):
    return "--" + field.replace("_", "-")


@pytest.fixture
def ev():
    return make_evidence(seed=1, n=60, k=4, d=8, n_labeled=10, s=5)


def test_badge_from_npy_files_matches_the_api(tmp_path, capsys, ev):
    np.save(tmp_path / "probs.npy", ev["probs"])
    np.save(tmp_path / "emb.npy", ev["embeddings"])
    ids = [f"item-{i:03d}" for i in range(60)]
    pd.DataFrame({"id": ids}).to_csv(tmp_path / "ids.csv", index=False)
    code, _, err = run(capsys, "select", "--strategy", "badge", "-n", 7, "--probs", tmp_path / "probs.npy",
                       "--embeddings", tmp_path / "emb.npy", "--ids", tmp_path / "ids.csv", "--seed", 3,
                       "--out", tmp_path / "batch.csv")
    assert code == 0, err
    batch = pd.read_csv(tmp_path / "batch.csv")
    result = ab.select("badge", 7, probs=ev["probs"], embeddings=ev["embeddings"], seed=3, return_result=True)
    expected = result.indices
    assert batch.columns.tolist() == ["rank", "id", "position", "score"]
    assert batch["rank"].tolist() == list(range(7))
    assert batch["position"].tolist() == expected.tolist()
    assert batch["id"].tolist() == [ids[i] for i in expected]
    np.testing.assert_allclose(batch["score"].to_numpy(), result.scores, rtol=1e-12)   # BADGE's D^2 per pick


@pytest.mark.parametrize("name", file_strategies())
def test_every_strategy_that_runs_from_files(tmp_path, capsys, ev, name):
    """Each registered strategy whose evidence can be files, with exactly the files it reads."""
    cls = ab.strategies.strategy_class(name)
    given = sorted(set(cls.needs) | set(cls.optional)) or ["probs"]
    argv = []
    for field in given:
        np.save(tmp_path / f"{field}.npy", ev[field])
        argv += [flag(field), tmp_path / f"{field}.npy"]
    code, out, err = run(capsys, "select", "--strategy", name, "-n", 5, *argv, "--seed", 11, "--out", "-")
    assert code == 0, err
    batch = pd.read_csv(__import__("io").StringIO(out))
    expected = ab.select(name, 5, seed=11, **{f: ev[f] for f in given})
    assert batch["position"].tolist() == expected.tolist()
    assert batch["id"].astype(str).tolist() == [str(i) for i in expected]


def test_strategies_needing_the_model_are_refused(capsys, tmp_path):
    model_level = [n for n in ab.strategies.names() if n not in file_strategies()]
    if not model_level:
        pytest.skip("every registered strategy runs from files")
    code, _, err = run(capsys, "select", "--strategy", model_level[0], "-n", 2, "--out", tmp_path / "b.csv")
    assert code == 2 and "cannot be given as files" in err and "badge" in err


def test_npz_archive_and_feature_tables(tmp_path, capsys, ev):
    ids = np.array([f"x{i}" for i in range(60)])
    np.savez(tmp_path / "all.npz", probs=ev["probs"], embeddings=ev["embeddings"],
             labeled_embeddings=ev["labeled_embeddings"], ids=ids)
    code, _, err = run(capsys, "select", "--strategy", "coreset", "-n", 6, "--evidence", tmp_path / "all.npz",
                       "--out", tmp_path / "a.parquet")
    assert code == 0, err
    expected = ab.select("coreset", 6, embeddings=ev["embeddings"], labeled_embeddings=ev["labeled_embeddings"],
                         seed=0)
    got = pd.read_parquet(tmp_path / "a.parquet")
    assert got["position"].tolist() == expected.tolist() and got["id"].tolist() == ids[expected].tolist()
    # The same evidence as feature tables with an id column (CSV and Parquet).
    emb = pd.DataFrame(ev["embeddings"], columns=[f"z{j}" for j in range(8)])
    emb.insert(0, "id", ids)
    emb.to_parquet(tmp_path / "emb.parquet")
    probs = pd.DataFrame(ev["probs"], columns=list("ABCD"))
    probs.insert(0, "id", ids)
    probs.to_csv(tmp_path / "probs.csv", index=False)
    code, _, err = run(capsys, "select", "-n", 6, "--probs", tmp_path / "probs.csv", "--embeddings",
                       tmp_path / "emb.parquet", "--out", tmp_path / "b.csv", "--option", "init=random")
    assert code == 0, err
    expected = ab.select("badge", 6, probs=ev["probs"], embeddings=ev["embeddings"], seed=0, init="random")
    got = pd.read_csv(tmp_path / "b.csv")
    assert got["position"].tolist() == expected.tolist() and got["id"].tolist() == ids[expected].tolist()


def test_exclude_by_id(tmp_path, capsys, ev):
    np.save(tmp_path / "p.npy", ev["probs"])
    (tmp_path / "ids.txt").write_text("\n".join(f"u{i}" for i in range(60)) + "\n")
    first = ab.select("entropy", 3, probs=ev["probs"])
    (tmp_path / "ex.txt").write_text("\n".join(f"u{i}" for i in first))
    code, _, err = run(capsys, "select", "--strategy", "entropy", "-n", 3, "--probs", tmp_path / "p.npy",
                       "--ids", tmp_path / "ids.txt", "--exclude", tmp_path / "ex.txt", "--out", tmp_path / "o.csv")
    assert code == 0, err
    got = pd.read_csv(tmp_path / "o.csv")
    assert not set(got["position"]) & set(first.tolist())
    assert got["position"].tolist() == ab.select("entropy", 3, probs=ev["probs"], exclude=first).tolist()


def test_bad_files_get_clear_errors(tmp_path, capsys, ev):
    np.save(tmp_path / "p.npy", ev["probs"])
    np.save(tmp_path / "z.npy", ev["embeddings"])
    np.save(tmp_path / "z_short.npy", ev["embeddings"][:50])
    bad = ev["probs"].copy()
    bad[3, 0] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    np.save(tmp_path / "logits.npy", ev["probs"] * 2)
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    pd.DataFrame({"id": ["a"] * 60}).to_csv(tmp_path / "dup_ids.csv", index=False)
    pd.DataFrame({"id": ["a", "b"]}).to_csv(tmp_path / "few_ids.csv", index=False)
    pd.DataFrame({"id": range(60), "p": ["x"] * 60}).to_csv(tmp_path / "text.csv", index=False)
    cases = [
        (["--strategy", "badge", "--probs", "p.npy"], "needs embeddings; give --embeddings FILE"),
        (["--strategy", "bogus", "--probs", "p.npy"], "unknown strategy 'bogus'"),
        (["--probs", "p.npy", "--embeddings", "z_short.npy"], "embeddings has 50 rows but 60 are expected"),
        (["--probs", "nan.npy", "--embeddings", "z.npy"], "contains NaN"),
        (["--probs", "logits.npy", "--embeddings", "z.npy"], "must sum to 1"),
        (["--probs", "junk.npy", "--embeddings", "z.npy"], "cannot be read"),
        (["--probs", "missing.npy", "--embeddings", "z.npy"], "does not exist"),
        (["--probs", "p.npy", "--embeddings", "z.npy", "--ids", "dup_ids.csv"], "duplicate ids 'a'"),
        (["--probs", "p.npy", "--embeddings", "z.npy", "--ids", "few_ids.csv"], "ids must have shape (60,)"),
        (["--strategy", "entropy", "--probs", "text.csv"], "are not numeric"),
        (["--strategy", "entropy", "--probs", "p.npy", "-n", "61"], "larger than the number of candidates"),
        (["--strategy", "badge", "--probs", "p.npy", "--embeddings", "z.npy", "--option", "init=bad"], "init must be"),
    ]
    for args, message in cases:
        argv = [a if not a.endswith((".npy", ".csv")) else tmp_path / a for a in args]
        if "-n" not in args:
            argv += ["-n", "5"]
        code, _, err = run(capsys, "select", *argv, "--out", tmp_path / "out.csv")
        assert code == 2, (args, err)
        assert message in err, (args, err)
    assert not (tmp_path / "out.csv").exists()


def test_help_lists_fields_and_strategies(capsys):
    with pytest.raises(SystemExit):
        main(["select", "--help"])
    text = capsys.readouterr().out
    for field in array_fields():
        assert flag(field) in text
    assert "badge" in text
