"""rubricforge as a user installs it: the wheel holds every package, its config, cards and
samples, and the installed tool runs from any directory (no checkout, no `sys.path` edits)."""

from __future__ import annotations

import json
import subprocess
import tomllib
import zipfile

import pytest

from conftest import ROOT, run_installed
from fake_openai import FakeOpenAI, completion

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_wheel_lists_every_package_and_data_folder_of_the_tree():
    """The package list is written out (conf/ and data_cards/ are mapped into `pipeline`): a
    new package, or a new folder of config, cards or samples, left out of it would be missing
    from the wheel."""
    code = {".".join(p.parent.relative_to(ROOT).parts) for top in ("pipeline", "stages")
            for p in (ROOT / top).rglob("__init__.py")}
    data = {"stages.sources.samples", "stages.benchmarks.samples"} | {
        ".".join(("pipeline", *p.relative_to(ROOT).parts)) for shipped in ("conf", "data_cards")
        for p in [ROOT / shipped, *(ROOT / shipped).rglob("*")] if p.is_dir()}
    setuptools = PYPROJECT["tool"]["setuptools"]
    assert set(setuptools["packages"]) == code | data
    assert set(setuptools["package-dir"]) == {"pipeline.conf", "pipeline.data_cards"}
    assert set(PYPROJECT["tool"]["setuptools"]["package-data"]) == data


@pytest.mark.e2e
def test_the_wheel_holds_the_config_cards_and_samples(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped, inside in (("conf", "pipeline/conf"), ("data_cards", "pipeline/data_cards"),
                            ("stages/sources/samples", "stages/sources/samples"),
                            ("stages/benchmarks/samples", "stages/benchmarks/samples")):
        files = {str(p.relative_to(ROOT / shipped)) for p in (ROOT / shipped).rglob("*")
                 if p.is_file() and p.suffix in (".yaml", ".md", ".json", ".jsonl")}
        assert files and {f"{inside}/{f}" for f in files} <= names, shipped


@pytest.mark.e2e
def test_the_installed_tool_runs_from_an_empty_directory(installed, real, tmp_path):
    """`sources`, the real-teacher build (the shared build's warm rerun: tests/conftest.py) and
    an eval on the samples, from a directory with nothing in it: the build writes the
    checkout's bytes into the default output folder under that directory."""
    where = installed / "lib"
    found = subprocess.run([str(installed / "bin" / "python"), "-c",
                            "import pipeline.engine.config as c, pipeline.rules.verdict as v; "
                            "print(c.CONF_DIR); print(v.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, check=True)
    assert all(line.startswith(str(where)) for line in found.stdout.split()), found.stdout
    listed = run_installed(installed, ["sources"], tmp_path)
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert "skywork" in listed.stdout and "hh_rlhf" in listed.stdout
    out, _ = real["second"]
    assert out == real["root"] / "empty" / "build" / "sample", "the default output, under cwd"
    mine = json.loads((out / "manifest.json").read_text())
    theirs = json.loads((real["first"][0] / "manifest.json").read_text())
    assert mine["teacher"]["requests"] == 0
    assert mine["files"] == theirs["files"], "the wheel builds the checkout's bytes"
    assert (out / "README.md").read_text().startswith("---")
    with FakeOpenAI(lambda body, n: completion("<answer>[[A]]</answer>")) as server:
        judged = run_installed(installed, ["eval", "eval.use_samples=true", "teacher=openai",
                                           "teacher.model=judge", f"teacher.base_url={server.base_url}",
                                           f"teacher.cache_dir={tmp_path}/eval-cache"], tmp_path)
    assert judged.returncode == 0, (judged.stdout + judged.stderr)[-3000:]
    report = json.loads((tmp_path / "build" / "eval" / "eval.json").read_text())
    assert report["judgements"] > 0


def test_a_users_conf_directory_joins_the_search_path(tmp_path):
    """A recipe of the user's own, in their own folder, beside the shipped ones (none copied)."""
    from pipeline.settings import load_config

    (tmp_path / "recipe").mkdir()
    (tmp_path / "recipe" / "mine.yaml").write_text(
        (ROOT / "conf" / "recipe" / "sample.yaml").read_text().replace("name: sample", "name: mine"))
    cfg = load_config([f"hydra.searchpath=[file://{tmp_path}]", "recipe=mine"])
    assert cfg.recipe.name == "mine" and list(cfg.sources) == ["skywork", "code_preference_pairs",
                                                               "math_step_dpo"]
    assert load_config([f"hydra.searchpath=[file://{tmp_path}]"]).recipe.name == "sample"

