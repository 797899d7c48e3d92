"""Training, evaluating, saving and loading the triage model.

One TF-IDF (words and word pairs, sublinear counts) and logistic-regression pipeline per target
(``team``, ``priority``), and one one-vs-rest logistic regression over the tags used at least
MIN_TAG_EXAMPLES times. Logistic regression gives a probability per class: the prediction's
confidence. Figures come from a held-out split (HELD_OUT of the examples, stratified when every
class has two examples, a fixed seed): accuracy, macro-F1, per-class precision and recall, and
the accuracy of always answering the most common class (the baseline to beat). The saved model is
then fitted on all examples.

Files, under ``data_dir/triage/``: ``model.json`` (format, scikit-learn version, training date,
figures, the SHA-256 of the pickle) and ``model.pkl``. A model is refused with a clear message,
never half-used, when the JSON or the pickle is corrupt, when it was written by another format or
another scikit-learn version (retrain), or when scikit-learn is missing. The pickle is trusted as
the daemon's own file in its data dir: never load one from elsewhere.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import pickle
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maild.errors import TicketdError
from maild.triage.data import Example

FORMAT = 1
TARGETS = ("team", "priority")
HELD_OUT = 0.25
SEED = 0
MIN_EXAMPLES = 4  # fewer labelled examples of a target: it is not learned
MIN_TAG_EXAMPLES = 3
TAG_THRESHOLD = 0.5  # a tag is predicted with at least this probability
MISSING = "scikit-learn is not installed (pip install 'ticketd[triage]')"


class TriageError(TicketdError):
    """Training or loading failed; the message says why and what to do."""

    exit_code = 65


def sklearn_version() -> str | None:
    try:
        import sklearn
    except ImportError:
        return None
    return str(sklearn.__version__)


def _pipeline() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        TfidfVectorizer(
            sublinear_tf=True, ngram_range=(1, 2), strip_accents="unicode", max_features=100_000
        ),
        LogisticRegression(max_iter=2000, C=10.0),
    )


@dataclass
class TriageModel:
    trained_at: str
    examples: int
    figures: dict[str, Any]
    classifiers: dict[str, Any] = field(default_factory=dict)  # target -> fitted pipeline
    tagger: Any = None  # (pipeline, labels) or None

    def predict(self, text: str) -> dict[str, Any]:
        """``{team: (value, confidence), priority: (...), tags: [(tag, confidence), ...]}``."""
        out: dict[str, Any] = {}
        for target, clf in self.classifiers.items():
            probs = clf.predict_proba([text])[0]
            best = int(probs.argmax())
            out[target] = (str(clf.classes_[best]), float(probs[best]))
        if self.tagger is not None:
            pipe, labels = self.tagger
            probs = pipe.predict_proba([text])[0]
            out["tags"] = [(labels[i], float(p)) for i, p in enumerate(probs) if p >= TAG_THRESHOLD]
        return out


def _labelled(examples: list[Example], target: str) -> tuple[list[str], list[str]]:
    pairs = [(e.text, getattr(e, target)) for e in examples if getattr(e, target)]
    return [t for t, _ in pairs], [str(v) for _, v in pairs]


def _skip_reason(labels: list[str]) -> str | None:
    classes = Counter(labels)
    if len(labels) < MIN_EXAMPLES:
        return f"{len(labels)} labelled example(s), at least {MIN_EXAMPLES} needed"
    if len(classes) < 2:
        only = next(iter(classes))
        return f"one class only ({only!r} in all {len(labels)} examples): nothing to learn"
    return None


def evaluate_target(texts: list[str], labels: list[str]) -> dict[str, Any]:
    """Figures on a held-out split for one target."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
    from sklearn.model_selection import train_test_split

    counts = Counter(labels)
    stratify = labels if min(counts.values()) >= 2 else None
    n_test = max(round(len(labels) * HELD_OUT), len(counts) if stratify else 1)
    if stratify is not None and len(labels) - n_test < len(counts):
        stratify = None
    x_train, x_test, y_train, y_test = train_test_split(
        texts, labels, test_size=n_test, random_state=SEED, stratify=stratify
    )
    if len(set(y_train)) < 2:
        raise TriageError("the training part of the split has one class only: add examples")
    pipe = _pipeline().fit(x_train, y_train)
    predicted = list(pipe.predict(x_test))
    classes = sorted(set(labels))
    p, r, _f, support = precision_recall_fscore_support(
        y_test, predicted, labels=classes, zero_division=0
    )
    majority = Counter(y_train).most_common(1)[0][0]
    return {
        "train": len(x_train),
        "test": len(x_test),
        "accuracy": round(float(accuracy_score(y_test, predicted)), 4),
        "macro_f1": round(
            float(f1_score(y_test, predicted, labels=classes, average="macro", zero_division=0)),
            4,
        ),
        "baseline_accuracy": round(sum(1 for y in y_test if y == majority) / len(y_test), 4),
        "baseline_class": majority,
        "per_class": {
            c: {
                "precision": round(float(p[i]), 4),
                "recall": round(float(r[i]), 4),
                "support": int(support[i]),
            }
            for i, c in enumerate(classes)
        },
    }


def evaluate(examples: list[Example]) -> dict[str, Any]:
    """Figures per target (held-out split); a target that cannot be learned says why."""
    if sklearn_version() is None:
        raise TriageError(MISSING)
    if not examples:
        raise TriageError("no training data: no resolved tickets yet (or an empty --data file)")
    figures: dict[str, Any] = {}
    for target in TARGETS:
        texts, labels = _labelled(examples, target)
        why = _skip_reason(labels)
        figures[target] = {"skipped": why} if why else evaluate_target(texts, labels)
    if all("skipped" in f for f in figures.values()):
        reasons = "; ".join(f"{t}: {figures[t]['skipped']}" for t in TARGETS)
        raise TriageError(f"nothing to learn from {len(examples)} examples ({reasons})")
    return figures


def train(examples: list[Example], now: dt.datetime) -> TriageModel:
    """Evaluate on a held-out split, then fit on every example."""
    figures = evaluate(examples)
    model = TriageModel(trained_at=now.isoformat(), examples=len(examples), figures=figures)
    for target in TARGETS:
        if "skipped" in figures[target]:
            continue
        texts, labels = _labelled(examples, target)
        model.classifiers[target] = _pipeline().fit(texts, labels)
    tag_counts = Counter(t for e in examples for t in e.tags)
    kept = sorted(t for t, n in tag_counts.items() if n >= MIN_TAG_EXAMPLES)
    if kept and len(examples) >= MIN_EXAMPLES:
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.preprocessing import MultiLabelBinarizer

        binarizer = MultiLabelBinarizer(classes=kept)
        y = binarizer.fit_transform([[t for t in e.tags if t in kept] for e in examples])
        if all(0 < y[:, i].sum() < len(examples) for i in range(len(kept))):
            pipe = _pipeline()
            pipe.steps[-1] = (pipe.steps[-1][0], OneVsRestClassifier(pipe.steps[-1][1]))
            pipe.fit([e.text for e in examples], y)
            model.tagger = (pipe, kept)
    figures["tags"] = {"learned": list(model.tagger[1]) if model.tagger else []}
    return model


def model_dir(data_dir: Path) -> Path:
    return data_dir / "triage"


def save(model: TriageModel, data_dir: Path) -> Path:
    """Write the model (pickle first, then its JSON, each atomically); return the JSON's path."""
    folder = model_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    blob = pickle.dumps(
        {"classifiers": model.classifiers, "tagger": model.tagger},
        protocol=pickle.HIGHEST_PROTOCOL,
    )
    meta = {
        "format": FORMAT,
        "sklearn": sklearn_version(),
        "trained_at": model.trained_at,
        "examples": model.examples,
        "figures": model.figures,
        "sha256": hashlib.sha256(blob).hexdigest(),
    }
    for name, data in (("model.pkl", blob), ("model.json", json.dumps(meta, indent=2).encode())):
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(folder / name)
    return folder / "model.json"


def load(data_dir: Path) -> TriageModel:
    """The saved model; TriageError with the reason for a missing, corrupt or foreign one."""
    folder = model_dir(data_dir)
    meta_path, blob_path = folder / "model.json", folder / "model.pkl"
    installed = sklearn_version()
    if installed is None:
        raise TriageError(MISSING)
    if not meta_path.exists():
        raise TriageError(f"no triage model in {folder}: run `ticketd triage train`")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("not an object")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TriageError(f"{meta_path}: the model file is corrupt ({exc}): retrain") from None
    if meta.get("format") != FORMAT:
        raise TriageError(
            f"{meta_path}: a model of format {meta.get('format')!r} from another version of "
            f"ticketd (this one reads {FORMAT}): retrain with `ticketd triage train`"
        )
    if meta.get("sklearn") != installed:
        raise TriageError(
            f"{meta_path}: trained with scikit-learn {meta.get('sklearn')}, installed is "
            f"{installed}: retrain with `ticketd triage train`"
        )
    try:
        blob = blob_path.read_bytes()
    except OSError as exc:
        raise TriageError(f"{blob_path}: cannot read the model: {exc.strerror or exc}") from None
    if hashlib.sha256(blob).hexdigest() != meta.get("sha256"):
        raise TriageError(f"{blob_path}: the model file is corrupt (checksum differs): retrain")
    try:
        parts = pickle.loads(blob)
        classifiers, tagger = parts["classifiers"], parts["tagger"]
    except Exception as exc:
        raise TriageError(f"{blob_path}: the model file is corrupt ({exc!r}): retrain") from None
    return TriageModel(
        trained_at=str(meta.get("trained_at")),
        examples=int(meta.get("examples", 0)),
        figures=dict(meta.get("figures", {})),
        classifiers=classifiers,
        tagger=tagger,
    )
