"""Add (or replace) a "re-scored" section in a shipped model's card from a `polypview eval` JSON.

    polypview eval blazeneo-dha nanonet-c-neo --threads 1 --video --json runs/eval.json
    python tools/append_scores.py runs/eval.json blazeneo-dha assets/blazeneo-dha.md --command "polypview eval ..."

For shipped models whose training checkpoint is not in assets/ (the card cannot be made again by
`polypview export --card`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_json", type=Path)
    parser.add_argument("model", help="model name as eval printed it (file stem)")
    parser.add_argument("card", type=Path)
    parser.add_argument("--command", required=True, help="the eval command, recorded in the card")
    opts = parser.parse_args(argv)
    from polypview.inference.training.modelcard import scores_section, with_scores_section

    payload = json.loads(opts.eval_json.read_text())
    found = [r for r in payload["results"] if Path(str(r.get("model", ""))).stem == opts.model]
    if not found:
        print(f"append_scores: no result for {opts.model} in {opts.eval_json}", file=sys.stderr)
        return 1
    evaluation = {**found[0], "data": payload.get("data"), "split": payload.get("split")}
    opts.card.write_text(with_scores_section(opts.card.read_text(), scores_section(evaluation, opts.command)))
    print(f"updated {opts.card}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
