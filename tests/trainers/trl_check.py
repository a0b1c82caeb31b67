"""Runs in TRL's own environment (.venv-trl): the TRL snippets of docs/training.md, on a real build.

The job is JSON in $TRAINER_CHECK_JOB, from tests/test_trainers.py: the snippets, their data
and model lines pointed at the build and the small model. The snippets run as written; only
the configs they create are shrunk to a few CPU steps (`use_cpu`, no bf16, short lengths).
Prints one JSON line of what happened.
"""

import json
import math
import os

import trl

SFT_SMALL = {"use_cpu": True, "bf16": False, "max_steps": 2, "per_device_train_batch_size": 1,
             "max_length": 1024, "report_to": "none", "save_strategy": "no", "logging_steps": 1}
GRPO_SMALL = {"use_cpu": True, "bf16": False, "max_steps": 1, "num_generations": 2,
              "per_device_train_batch_size": 2, "max_completion_length": 16, "report_to": "none",
              "save_strategy": "no", "logging_steps": 1}


def shrunk(config_cls, small):
    """The config class as the snippet calls it, with the test's CPU-sized settings on top."""
    def make(*args, **kwargs):
        return config_cls(*args, **{**kwargs, **small})
    return make


def run(snippet):
    """Execute a snippet as a user would paste it; return the trainer it made."""
    scope = {"__name__": "__main__"}
    exec(compile(snippet, "<docs/training.md snippet>", "exec"), scope)  # noqa: S102
    return scope["trainer"]


def losses(trainer):
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def sft_report(trainer):
    """Steps, losses, and which tokens the loss covers in the first training row (TRL sets the
    labels of the others to -100)."""
    row = trainer.train_dataset[0]
    ids = row["input_ids"]
    labels = row.get("labels") or ids
    mask = row.get("completion_mask") or [1] * len(ids)
    covered = [i for i, label, m in zip(ids, labels, mask, strict=True) if label != -100 and m]
    tok = trainer.processing_class
    return {"steps": trainer.state.global_step, "losses": losses(trainer),
            "columns": trainer.train_dataset.column_names, "loss_covers": tok.decode(covered),
            "whole_text": tok.decode(ids), "tokens": len(ids)}


def main():
    job = json.loads(os.environ["TRAINER_CHECK_JOB"])
    trl.SFTConfig = shrunk(trl.SFTConfig, SFT_SMALL)
    trl.GRPOConfig = shrunk(trl.GRPOConfig, GRPO_SMALL)
    report = {"trl": trl.__version__}
    for form, snippet in job["sft"].items():
        report[f"sft_{form}"] = sft_report(run(snippet))
    grpo = run(job["grpo"])
    rewards = [v for e in grpo.state.log_history for k, v in e.items()
               if k == "rewards/trl_reward/mean"]
    report["grpo"] = {"steps": grpo.state.global_step, "losses": losses(grpo),
                      "reward_logs": rewards}
    for entry in ("sft_trace_only", "sft_whole_chat", "grpo"):
        report[entry]["finite"] = all(math.isfinite(x) for x in report[entry]["losses"])
    print("REPORT " + json.dumps(report))


if __name__ == "__main__":
    main()
