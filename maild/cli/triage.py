"""``ticketd triage train [--data FILE.jsonl] | evaluate [--data FILE.jsonl] [--json]``.

``train`` learns from the resolved tickets (or the file), prints the held-out figures and saves
the model under the data dir; ``evaluate`` only prints the figures. See :mod:`maild.triage.model`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from maild.cli.common import add_config_option, open_app


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("triage", help="learned triage: train and evaluate the model")
    tsub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, func, text in (
        ("train", cmd_train, "learn team, priority and tags; save the model"),
        ("evaluate", cmd_evaluate, "accuracy, macro-F1, per-class precision/recall (held out)"),
    ):
        p = tsub.add_parser(name, help=text)
        add_config_option(p)
        p.add_argument(
            "--data", type=Path, metavar="FILE.jsonl", help="{text, team, priority, tags} per line"
        )
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)


def _examples(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    from maild.triage import data

    app = open_app(args)
    return app, data.from_jsonl(args.data) if args.data else data.from_tickets()


def print_figures(figures: dict[str, Any], examples: int) -> None:
    print(f"{examples} examples")
    for target in ("team", "priority"):
        f = figures.get(target, {})
        if "skipped" in f:
            print(f"{target}: not learned: {f['skipped']}")
            continue
        print(
            f"{target}: accuracy {f['accuracy']:.3f}, macro-F1 {f['macro_f1']:.3f} "
            f"(baseline '{f['baseline_class']}' {f['baseline_accuracy']:.3f}; "
            f"{f['train']} trained, {f['test']} held out)"
        )
        for label, c in f["per_class"].items():
            print(
                f"  {label:<20} precision {c['precision']:.3f}  recall {c['recall']:.3f}"
                f"  ({c['support']} held out)"
            )
    learned = figures.get("tags", {}).get("learned")
    if learned is not None:
        print(f"tags: {', '.join(learned) if learned else '(none used often enough)'}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from maild.triage.model import evaluate

    _app, examples = _examples(args)
    figures = evaluate(examples)
    if args.json:
        print(json.dumps({"examples": len(examples), "figures": figures}, indent=2))
    else:
        print_figures(figures, len(examples))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from maild.triage.model import save, train

    app, examples = _examples(args)
    model = train(examples, app.clock.now())
    path = save(model, app.data_dir)
    if args.json:
        print(
            json.dumps(
                {"examples": len(examples), "figures": model.figures, "model": str(path)}, indent=2
            )
        )
    else:
        print_figures(model.figures, len(examples))
        print(f"saved {path} (trained {model.trained_at})")
    return 0
