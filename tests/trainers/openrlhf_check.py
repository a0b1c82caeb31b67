"""Runs in OpenRLHF's own environment (.venv-openrlhf) in place of `deepspeed --module
openrlhf.cli.train_sft` in docs/training.md's command: the command's flags arrive as this script's
arguments, are read by OpenRLHF's own parser, then its dataset code loads the `sft` part.

`train_sft` builds its parser under `if __name__ == "__main__"` and imports
deepspeed at the top, which does not install on a CPU machine; so the parser's statements are
taken from the installed file and run as they are. `blending_datasets` and `SFTDataset` then
load the data as `train_sft.train` does. Prints one JSON line of what happened.
"""

import argparse
import ast
import datetime
import importlib.util
import json
import sys
from pathlib import Path

import openrlhf
from openrlhf.datasets import SFTDataset
from openrlhf.datasets.utils import blending_datasets
from openrlhf.utils.config import hierarchize
from transformers import AutoTokenizer


def train_sft_parser() -> argparse.ArgumentParser:
    """The parser `python -m openrlhf.cli.train_sft` builds, from the installed source."""
    source = Path(importlib.util.find_spec("openrlhf.cli.train_sft").origin).read_text()
    main = next(node for node in ast.parse(source).body
                if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test))
    body = []
    for stmt in main.body:
        if isinstance(stmt, ast.Assign) and "parse_args" in ast.unparse(stmt.value):
            break
        body.append(stmt)
    scope = {"argparse": argparse, "datetime": datetime.datetime}
    exec(compile(ast.Module(body=body, type_ignores=[]), "train_sft", "exec"), scope)  # noqa: S102
    return scope["parser"]


class Strategy:
    """What `blending_datasets` and `SFTDataset` read from train_sft's DeepSpeed strategy."""

    def __init__(self, args):
        self.args = args

    def print(self, *msg):
        print(*msg, file=sys.stderr)

    def is_rank_0(self):
        return True


def main():
    args = hierarchize(train_sft_parser().parse_args(sys.argv[1:]))
    strategy = Strategy(args)
    data = blending_datasets(args.data.dataset, args.data.dataset_probs, strategy, args.train.seed,
                             max_count=args.data.max_samples, dataset_split=args.data.dataset_split)
    tokenizer = AutoTokenizer.from_pretrained(args.model.model_name_or_path)
    dataset = SFTDataset(data, tokenizer, args.data.max_len, strategy,
                         pretrain_mode=args.model.pretrain_mode_enable,
                         input_template=args.data.input_template, multiturn=args.data.multiturn)
    rows = []
    for i in range(len(dataset)):
        input_ids, _, loss_mask = dataset[i]
        ids, mask = input_ids[0].tolist(), loss_mask[0].tolist()
        # mask[t] = 1: the logit at t is trained to predict token t + 1
        targets = [ids[t + 1] for t in range(len(ids) - 1) if mask[t]]
        first = mask.index(1) + 1 if 1 in mask else len(ids)
        rows.append({"trained_on": tokenizer.decode(targets),
                     "context": tokenizer.decode(ids[:first])})
    print("REPORT " + json.dumps({
        "openrlhf": openrlhf.__version__ if hasattr(openrlhf, "__version__") else None,
        "input_key": args.data.input_key, "output_key": args.data.output_key,
        "apply_chat_template": args.data.apply_chat_template, "rows_in": len(data),
        "rows": rows, "eos": tokenizer.eos_token}))


if __name__ == "__main__":
    main()
