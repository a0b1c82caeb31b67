"""Runs in verl's own environment (.venv-verl) in place of `python -m verl.trainer.main_ppo` in
the verl command of docs/training.md: the command's overrides arrive as this script's arguments, as the
shell expanded them.

The job (the small model's directory, traces to score) is JSON in $TRAINER_CHECK_JOB, from
tests/test_trainers.py. The overrides are composed into verl's own
`ppo_trainer` config (Hydra refuses a key verl does not have); `RLHFDataset` reads the `rl`
files the way `main_ppo` does; the reward is loaded by verl's loader from that config. Prints
one JSON line of what happened.
"""

import json
import os
import sys
from pathlib import Path

import verl
from hydra import compose, initialize_config_dir
from transformers import AutoTokenizer
from verl.trainer.ppo.reward import get_custom_reward_fn
from verl.utils.dataset.rl_dataset import RLHFDataset


def main():
    job = json.loads(os.environ["TRAINER_CHECK_JOB"])
    config_dir = Path(verl.__file__).parent / "trainer" / "config"
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        cfg = compose(config_name="ppo_trainer", overrides=sys.argv[1:])
    tokenizer = AutoTokenizer.from_pretrained(job["model"])
    dataset = RLHFDataset(data_files=list(cfg.data.train_files), tokenizer=tokenizer,
                          config=cfg.data)
    rows = [dataset[i] for i in range(len(dataset))]
    reward = get_custom_reward_fn(cfg)
    scores = [reward(data_source=row["data_source"], solution_str=trace,
                     ground_truth=row["reward_model"]["ground_truth"],
                     extra_info=row.get("extra_info"))
              for row in rows for trace in (job["right"][row["reward_model"]["ground_truth"]],
                                            job["wrong"][row["reward_model"]["ground_truth"]])]
    print("REPORT " + json.dumps({
        "verl": verl.__version__, "rows": len(dataset),
        "reward_path": cfg.reward.custom_reward_function.path,
        "ground_truths": [row["reward_model"]["ground_truth"] for row in rows],
        "prompts": [[dict(m) for m in row["raw_prompt"]] for row in rows]
        if rows and "raw_prompt" in rows[0] else None,
        "keys": sorted(rows[0]) if rows else [], "scores": scores}))


if __name__ == "__main__":
    main()
