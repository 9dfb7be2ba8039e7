"""scikit-learn and skorch models as learners: ab.run picks what ab.select picks on the fitted
estimators' outputs, class columns mapped to 0..K-1, seeding, refusals before training, grid specs."""
import copy

import numpy as np
import pytest
import torch
from torch import nn

import activebatch as ab
from activebatch.experiments import GridSpec
from activebatch.experiments.runner import execute_run
from activebatch.learning.models import MLP
from activebatch.learning.sklearn import SklearnLearner, SkorchLearner, as_learner, load_factory, seed_estimator
from activebatch.selection.round import MissingEvidenceError

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.dummy import DummyClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

K = 3
SEED = 3

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _data(n=150, n_test=60, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + n_test, d))
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5).astype(np.int64)
    return X[:n], y[:n], X[n:], y[n:]


class Recording(SklearnLearner):
    """Keeps a copy of every fitted estimator, to replay the run's selections."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fits = []

    def fit(self, X, y, *, seed=0, callbacks=None):
        out = super().fit(X, y, seed=seed, callbacks=callbacks)
        self.fits.append(copy.deepcopy(self.estimator_))
        return out


def logistic_pipeline():
    """Factory of the grid-spec test (importable as test_sklearn_learner:logistic_pipeline)."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=200))


def not_a_classifier():
    return StandardScaler()


def _mapped(proba, classes, k=K):
    out = np.zeros((proba.shape[0], k))
    out[:, classes] = proba
    return out.astype(np.float32)


def _replay(hist, learner, X, y_all, strategy, batch, embed_fn, seed=SEED):
    """Every round's picks from ab.select on the outputs of the estimator fitted before it."""
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[1])   # ab.run's selection stream
    labeled = set(hist.rounds[0].selected.tolist())
    for t in range(1, len(hist.rounds)):
        est = learner.fits[t - 1]
        lab = np.array(sorted(labeled))
        cand = np.setdiff1d(np.arange(len(X)), lab)
        # fitted from scratch on exactly the labels of that moment
        refit = clone(est).fit(X[lab], y_all[lab])
        np.testing.assert_allclose(refit.predict_proba(X[cand]), est.predict_proba(X[cand]), rtol=1e-6, atol=1e-9)
        probs = _mapped(est.predict_proba(X[cand]), est.classes_)
        emb = embed_fn(est, X[cand]).astype(np.float32)
        lab_emb = embed_fn(est, X[lab]).astype(np.float32)
        picks = ab.select(strategy, batch, probs=probs, embeddings=emb, labeled_embeddings=lab_emb, seed=rng)
        np.testing.assert_array_equal(cand[picks], hist.rounds[t].selected)
        labeled |= set(hist.rounds[t].selected.tolist())


def _run(learner, strategy, *, seed=SEED, rounds=3, batch=6, data=None):
    X, y, Xt, yt = data or _data()
    pool = ab.Pool(X, y, n_classes=K)
    return ab.run(pool, learner, strategy, initial=12, batch_size=batch, rounds=rounds, test=(Xt, yt), seed=seed)


@pytest.mark.parametrize("strategy", ["margin", "entropy", "coreset", "badge"])
def test_run_with_a_logistic_pipeline_picks_what_select_picks_on_the_fitted_estimators(strategy):
    X, y, Xt, yt = _data()
    learner = Recording(make_pipeline(StandardScaler(), LogisticRegression()), n_classes=K, embed="standardscaler")
    hist = _run(learner, strategy, data=(X, y, Xt, yt))
    assert [r.n_labeled for r in hist.rounds] == [12, 18, 24, 30]
    assert len(learner.fits) == 4 and hist.model == "StandardScaler+LogisticRegression"
    _replay(hist, learner, X, y, strategy, 6, lambda est, A: est[:-1].transform(A))
    # the reported accuracy is that of the last fitted estimator's most probable class
    last = learner.fits[-1]
    pred = _mapped(last.predict_proba(Xt), last.classes_).argmax(1)
    assert hist.rounds[-1].test_accuracy == pytest.approx(float((pred == yt).mean()))


def _relu_hidden(mlp, A):
    # the default MLPClassifier: one relu hidden layer, written out
    return np.maximum(A @ mlp.coefs_[0] + mlp.intercepts_[0], 0.0)


def test_run_with_an_mlp_classifier_and_its_hidden_layer_picks_what_select_picks():
    X, y, Xt, yt = _data()
    learner = Recording(MLPClassifier(hidden_layer_sizes=(16,), max_iter=60), n_classes=K, embed="hidden")
    hist = _run(learner, "badge", data=(X, y, Xt, yt))
    _replay(hist, learner, X, y, "badge", 6, _relu_hidden)
    # the hidden layer is the penultimate embedding: the output layer on it gives predict_proba
    mlp = learner.fits[-1]
    logits = _relu_hidden(mlp, X) @ mlp.coefs_[1] + mlp.intercepts_[1]
    soft = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(soft / soft.sum(1, keepdims=True), mlp.predict_proba(X), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(learner.embed(X), _relu_hidden(mlp, X).astype(np.float32), rtol=1e-6, atol=1e-6)


def test_the_same_seed_gives_the_same_run_and_another_seed_another():
    runs = {}
    for key, seed in (("a", 5), ("b", 5), ("c", 6)):
        learner = Recording(make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=40)),
                            n_classes=K, embed="hidden")
        hist = _run(learner, "badge", seed=seed, rounds=2)
        runs[key] = (hist.to_frame(), learner)
    frame_a, frame_b = runs["a"][0], runs["b"][0]
    cols = ["n_labeled", "test_accuracy", "train_epochs", "train_accuracy", "class_histogram"]
    assert frame_a[cols].equals(frame_b[cols])
    for ra, rb in zip(runs["a"][1].fits, runs["b"][1].fits):
        for wa, wb in zip(ra[-1].coefs_, rb[-1].coefs_):
            np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(runs["a"][1].fits[0][-1].coefs_[0], runs["c"][1].fits[0][-1].coefs_[0])


def test_seed_estimator_seeds_every_random_state_from_the_seed():
    pipe = make_pipeline(PCA(n_components=2, svd_solver="randomized", random_state=99),
                         MLPClassifier(random_state=None))
    values = seed_estimator(pipe, 7)
    names = ["mlpclassifier__random_state", "pca__random_state"]   # name order
    assert sorted(values) == names
    for i, name in enumerate(names):
        assert values[name] == int(np.random.SeedSequence([7, i]).generate_state(1)[0])
        assert pipe.get_params()[name] == values[name]
    assert values["pca__random_state"] != values["mlpclassifier__random_state"]
    learner = SklearnLearner(make_pipeline(StandardScaler(), LogisticRegression()), n_classes=2)
    X, y = np.arange(8.0).reshape(4, 2), np.array([0, 1, 0, 1])
    learner.fit(X, y, seed=7)
    assert learner.estimator_.get_params()["logisticregression__random_state"] == \
        int(np.random.SeedSequence([7, 0]).generate_state(1)[0])
    assert learner.estimator is not learner.estimator_ and learner.estimator[-1].random_state is None


def test_classes_absent_from_the_labels_get_probability_zero():
    X = np.arange(8.0).reshape(4, 2)
    # prior probabilities are the class frequencies: 3/4 for class 0, 1/4 for class 2, 0 for 1 and 3
    learner = SklearnLearner(DummyClassifier(strategy="prior"), n_classes=4)
    learner.fit(X, np.array([0, 0, 2, 0]))
    np.testing.assert_allclose(learner.predict_proba(X), np.tile([0.75, 0.0, 0.25, 0.0], (4, 1)))
    np.testing.assert_array_equal(learner.predict(X), [0, 0, 0, 0])

    Xd, yd, _, _ = _data()
    keep = yd != 1
    lr = SklearnLearner(LogisticRegression(), n_classes=K)
    lr.fit(Xd[keep], yd[keep])
    P = lr.predict_proba(Xd)
    assert P.shape == (len(Xd), K) and np.all(P[:, 1] == 0)
    np.testing.assert_allclose(P[:, [0, 2]], lr.estimator_.predict_proba(Xd), rtol=1e-6)
    # evidence and the labeled items' probabilities use the same columns
    pool = ab.Pool(Xd, yd, n_classes=K)
    pool.label(np.flatnonzero(keep)[:20])
    ev = lr.evidence(pool)
    assert ev.probs.shape == (len(pool) - 20, K)
    assert torch.all(ev.labeled_probs[:, 1] == 0) and ev.probs.dtype == torch.float32


def test_labels_of_a_single_class():
    X = np.arange(10.0).reshape(5, 2)
    for est in (DummyClassifier(strategy="prior"), MLPClassifier(hidden_layer_sizes=(4,), max_iter=5)):
        learner = SklearnLearner(est, n_classes=3)
        learner.fit(X, np.ones(5, dtype=np.int64))
        np.testing.assert_array_equal(learner.predict_proba(X), np.tile([0.0, 1.0, 0.0], (5, 1)))
    with pytest.raises(ValueError, match="single class 1.*at least two classes"):
        SklearnLearner(LogisticRegression(), n_classes=3).fit(X, np.ones(5, dtype=np.int64))


class _Spy(SklearnLearner):
    n_fits = 0

    def fit(self, *args, **kwargs):
        type(self).n_fits += 1
        return super().fit(*args, **kwargs)


@pytest.mark.parametrize("strategy, embed, message", [
    ("loss_prediction", None, "needs a torch model trained by activebatch.Learner"),
    ("adversarial_deepfool", "transform", "needs a torch model trained by activebatch.Learner"),
    ("bald", "transform", "needs MC samples"),
    ("batchbald", None, "needs MC samples"),
    ("badge", None, r"for embeddings give SklearnLearner\(\.\.\., embed=\.\.\.\)"),
])
def test_strategies_the_model_cannot_serve_are_refused_before_training(strategy, embed, message):
    X, y, Xt, yt = _data()
    pool = ab.Pool(X, y, n_classes=K)
    _Spy.n_fits = 0
    learner = _Spy(make_pipeline(StandardScaler(), LogisticRegression()), n_classes=K, embed=embed)
    offers = "probs, embeddings, labeled_embeddings, labeled_probs, labels, pool" if embed else \
        "probs, labeled_probs, labels, pool"
    with pytest.raises(MissingEvidenceError, match=message) as info:
        ab.run(pool, learner, strategy, initial=12, batch_size=6, rounds=1, test=(Xt, yt))
    if strategy != "badge":
        assert f"a scikit-learn model (SklearnLearner) provides only {offers}" in str(info.value)
    assert "use Learner.evidence(pool), not arrays" not in str(info.value)
    assert _Spy.n_fits == 0 and pool.n_labeled == 0


def test_vaal_which_needs_only_the_pool_runs():
    learner = SklearnLearner(LogisticRegression(), n_classes=K)
    assert "pool" in learner.evidence_fields() and "learner" not in learner.evidence_fields()
    hist = _run(learner, ab.strategies.get("vaal", epochs=0.5), rounds=1)
    assert [r.n_labeled for r in hist.rounds] == [12, 18]


def test_bad_options_and_inputs_are_refused_clearly():
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    with pytest.raises(TypeError, match="predict_proba"):
        SklearnLearner(StandardScaler(), n_classes=2)
    with pytest.raises(ValueError, match="n_classes must be an integer >= 2"):
        SklearnLearner(pipe, n_classes=1)
    with pytest.raises(ValueError, match="not a Pipeline"):
        SklearnLearner(LogisticRegression(), n_classes=2, embed="transform")
    with pytest.raises(ValueError, match="'standardscaler'"):
        SklearnLearner(pipe, n_classes=2, embed="scaler")
    with pytest.raises(ValueError, match="MLPClassifier"):
        SklearnLearner(pipe, n_classes=2, embed="hidden")
    learner = SklearnLearner(pipe, n_classes=2)
    with pytest.raises(ValueError, match=r"rows have shape \(2, 3\); flatten"):
        learner.check_inputs(np.zeros((4, 2, 3)), "the pool")
    with pytest.raises(ValueError, match="not fitted yet"):
        learner.predict(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="no torch training loop"):
        learner.fit(np.zeros((2, 2)), [0, 1], callbacks=[ab.learning.LRScheduler(lambda e: 1.0)])
    with pytest.raises(ValueError, match="label 2 but the learner has n_classes=2"):
        learner.fit(np.zeros((2, 2)), [0, 2])


def test_a_callable_embedding_and_evidence_on_cuda_when_there_is_one():
    X, y, Xt, yt = _data()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    learner = SklearnLearner(LogisticRegression(), n_classes=K, embed=lambda A: np.asarray(A)[:, :3] * 2.0,
                             device=device)
    pool = ab.Pool(X, y, n_classes=K)
    pool.label(np.arange(20))
    learner.fit(*pool.labeled_data(), seed=0)
    ev = learner.evidence(pool)
    assert ev.embeddings.device.type == device
    np.testing.assert_allclose(ev.embeddings.cpu().numpy(), (X[20:, :3] * 2).astype(np.float32))
    np.testing.assert_allclose(ev.labeled_embeddings.cpu().numpy(), (X[:20, :3] * 2).astype(np.float32))
    np.testing.assert_array_equal(ev.labels.numpy(), y[:20])
    assert ev.pool is pool and list(ev.candidate_ids) == list(range(20, len(X)))


# skorch -------------------------------------------------------------------------------------------
skorch = pytest.importorskip("skorch")


def _net(module=MLP, **kw):
    opts = dict(criterion=nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=1e-2, max_epochs=4, batch_size=16,
                train_split=None, verbose=0)
    if isinstance(module, type):
        opts.update(module__n_features=5, module__n_classes=K, module__embedding_dim=8)
    opts.update(kw)
    return skorch.NeuralNetClassifier(module, **opts)


def test_skorch_net_runs_with_its_modules_embeddings_and_seeds():
    torch.set_num_threads(1)
    X, y, Xt, yt = _data()
    learner = SkorchLearner(_net(), n_classes=K)
    assert learner.embed_from == "module" and learner.model_name == "NeuralNetClassifier(MLP)"
    hist = _run(learner, "badge", rounds=2)
    assert [r.n_labeled for r in hist.rounds] == [12, 18, 24]
    assert hist.rounds[-1].train_epochs == 4
    # evidence: the module's embed and the softmax of its logits on the candidates
    pool = ab.Pool(X, y, n_classes=K)
    pool.label(np.concatenate([r.selected for r in hist.rounds]))
    ev = learner.evidence(pool)
    module = learner.estimator_.module_.eval()
    xc = torch.as_tensor(X[pool.unlabeled_indices], dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(ev.embeddings, module.embed(xc))
        torch.testing.assert_close(ev.probs, torch.softmax(module(xc), 1))
    again = _run(SkorchLearner(_net(), n_classes=K), "badge", rounds=2)
    assert all(np.array_equal(a.selected, b.selected) for a, b in zip(hist.rounds, again.rounds))
    assert [r.test_accuracy for r in hist.rounds] == [r.test_accuracy for r in again.rounds]


def test_skorch_module_instance_is_reinitialised_from_the_seed():
    X, y, _, _ = _data()
    template = MLP(5, K, embedding_dim=8)
    before = copy.deepcopy(template.state_dict())
    weights = []
    for seed in (0, 0, 1):
        learner = SkorchLearner(_net(template, max_epochs=1), n_classes=K)
        learner.fit(X[:30], y[:30], seed=seed)
        weights.append(learner.estimator_.module_.head.weight.detach().clone())
    torch.testing.assert_close(weights[0], weights[1])
    assert not torch.equal(weights[0], weights[2])
    for key, value in template.state_dict().items():   # the given module is never trained
        torch.testing.assert_close(value, before[key])


def test_skorch_refusals():
    X = np.zeros((4, 5), dtype=np.float32)
    with pytest.raises(TypeError, match="use activebatch.learning.sklearn.SkorchLearner"):
        SklearnLearner(_net(), n_classes=K)
    with pytest.raises(TypeError, match="use SklearnLearner"):
        SkorchLearner(LogisticRegression(), n_classes=K)
    learner = SkorchLearner(_net(), n_classes=K)
    with pytest.raises(ValueError, match=r"rows have shape \(7,\)"):
        learner.check_inputs(np.zeros((3, 7)), "the pool")
    learner.check_inputs(X)
    # a module returning logits trained with skorch's default NLLLoss gives no probabilities
    logits = SkorchLearner(_net(criterion=nn.NLLLoss), n_classes=K)
    Xd, yd, _, _ = _data()
    with pytest.raises(ValueError, match="CrossEntropyLoss"):
        logits.fit(Xd[:30], yd[:30])
    with pytest.raises(ValueError, match="embed='module' needs a module with embed"):
        SkorchLearner(_net(nn.Linear(5, K)), n_classes=K, embed="module")
    assert SkorchLearner(_net(nn.Linear(5, K)), n_classes=K).embed_from is None
    with pytest.raises(MissingEvidenceError, match="a skorch model \\(SkorchLearner\\) provides only"):
        ab.run(ab.Pool(Xd, yd, n_classes=K), learner, "mal", initial=10, batch_size=5, rounds=1,
               test=(Xd[:10], yd[:10]))
    assert isinstance(as_learner(_net(), n_classes=K), SkorchLearner)
    assert type(as_learner(LogisticRegression(), n_classes=K)) is SklearnLearner


# grid specs ---------------------------------------------------------------------------------------
GRID = dict(datasets=["digits"], models=["sklearn"], batch_sizes=[10], seeds=1, initial=20, rounds=1,
            strategies=["margin", "badge"],
            training={"sklearn": "test_sklearn_learner:logistic_pipeline", "sklearn_embed": "transform"})


def test_a_grid_spec_runs_the_factorys_estimator():
    spec = GridSpec.from_dict(GRID)
    for strategy in spec.strategies:
        out = execute_run(spec.to_dict(), f"digits|sklearn|10|{strategy}|0")
        assert [r["n_labeled"] for r in out["rows"]] == [20, 30]
        assert {r["model"] for r in out["rows"]} == {"sklearn"}
        assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in out["rows"])


@pytest.mark.parametrize("change, message", [
    (dict(training={"sklearn": "test_sklearn_learner.logistic_pipeline"}), "named 'package.module:function'"),
    (dict(training={"sklearn": "no_such_module_x:f"}), "cannot import the module 'no_such_module_x'"),
    (dict(training={"sklearn": "test_sklearn_learner:nothing_here"}), "has no attribute 'nothing_here'"),
    (dict(training={"sklearn": "test_sklearn_learner:K"}), "is not callable"),
    (dict(training={"sklearn": "test_sklearn_learner:not_a_classifier"}), "returned StandardScaler"),
    (dict(training={"sklearn": "test_sklearn_learner:logistic_pipeline", "sklearn_embed": "hidden"}),
     "MLPClassifier"),
    (dict(training={"sklearn": "test_sklearn_learner:logistic_pipeline"}), "for embeddings give SklearnLearner"),
    (dict(strategies=["bald"]), "needs MC samples"),
    (dict(training={"sklearn": "test_sklearn_learner:logistic_pipeline", "max_epochs": 3}),
     "options of the torch Learner"),
    (dict(models=["mlp"]), "set models = \\['sklearn'\\]"),
    (dict(training={}), "model 'sklearn' is the estimator of \\[training\\] sklearn"),
    (dict(loop={"proxy": {"max_epochs": 3}}), "loop.proxy"),
])
def test_grid_spec_errors(change, message):
    with pytest.raises(ValueError, match=message):
        GridSpec.from_dict({**GRID, **change})


def test_load_factory_follows_dotted_attributes():
    assert load_factory("test_sklearn_learner:logistic_pipeline") is logistic_pipeline
    assert load_factory("activebatch.learning.sklearn:SklearnLearner.fit") is SklearnLearner.fit
