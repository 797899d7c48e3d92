"""Benchmark learned triage on generated labelled tickets: accuracy against the majority-class
baseline, training time, and prediction latency per message.

    .venv/bin/python bench/triage.py [--examples 5000] [--predictions 1000]

The examples come from ``tests/triagekit.py`` (three teams, four priorities, tags, written in
several ways, with a tenth of the teams and a fifth of the priorities relabelled at random, as
in a real history). Figures are those ``ticketd triage evaluate`` prints: a held-out quarter.
Latency is one message at a time, as the rules ask for it, through the loaded model
(:class:`maild.triage.predict.TriageHolder`), after a save and a load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from maild.triage.data import Example  # noqa: E402
from maild.triage.model import save, train  # noqa: E402
from maild.triage.predict import TriageHolder  # noqa: E402
from tests.triagekit import generate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000)
    parser.add_argument("--predictions", type=int, default=1000)
    args = parser.parse_args()
    rows = generate(args.examples)
    examples = [Example(r["text"], r["team"], r["priority"], tuple(r["tags"])) for r in rows]
    start = time.perf_counter()
    model = train(examples, dt.datetime.now(dt.UTC).replace(tzinfo=None))
    trained = time.perf_counter() - start
    print(
        f"{len(examples):,} generated examples; trained (evaluation and final fit) in {trained:.1f} s"
    )
    for target in ("team", "priority"):
        f = model.figures[target]
        print(
            f"  {target:<8} accuracy {f['accuracy']:.3f}  macro-F1 {f['macro_f1']:.3f}  "
            f"majority baseline ('{f['baseline_class']}') {f['baseline_accuracy']:.3f}  "
            f"({f['test']} held out)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        save(model, Path(tmp))
        holder = TriageHolder(Path(tmp))
        texts = [r["text"] for r in generate(args.predictions, seed=99)]
        holder.predict(texts[0])  # load once
        times = []
        for text in texts:
            t = time.perf_counter()
            holder.predict(text)
            times.append(time.perf_counter() - t)
    times.sort()
    print(
        f"  prediction latency per message: median {statistics.median(times) * 1000:.2f} ms, "
        f"p95 {times[int(len(times) * 0.95) - 1] * 1000:.2f} ms ({len(times)} messages)"
    )


if __name__ == "__main__":
    main()
