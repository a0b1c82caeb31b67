"""Shared fixtures. Tests never touch the network: the Hub is switched off."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402

from pipeline.settings import load_config  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {"HF_TOKEN": "hf_e2e_secret_token_0123456789", "OPENAI_API_KEY": "sk-e2e-secret-0123456789"}


# The shared builds, longest first: under `pytest -n 2 --dist loadgroup` (make test) the tests
# of each run in one worker, which builds it once; the one with the real model starts first.
SHARED_BUILDS = ("real", "runs")
# Then the groups with tests that build or start a cluster (minutes), then those that start a
# Ray, then the rest: the long ones begin early and the short ones fill the workers' last minutes.
SLOW_MARKS = (("e2e", "cluster"), ("ray",))


@pytest.hookimpl(wrapper=True)  # around xdist's own, which reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> Iterator[None]:
    """Group the tests for the workers: those of a shared build together, the others by module
    (a module's own Ray or server is started once). Groups go to the workers longest first
    (make test keeps this order: `--no-loadscope-reorder`), so the longest chain of work begins
    at once, beside everything else."""
    def group(item: pytest.Item) -> str:
        names = set(item.fixturenames) | {getattr(item, "callspec", None)
                                          and item.callspec.params.get("shared")}
        return next((b for b in SHARED_BUILDS if b in names), item.nodeid.split("::")[0])

    def rank(item: pytest.Item, group: str) -> int:
        if group in SHARED_BUILDS:
            return SHARED_BUILDS.index(group)
        marks = {m.name for m in item.iter_markers()}
        return len(SHARED_BUILDS) + next(
            (i for i, slow in enumerate(SLOW_MARKS) if marks & set(slow)), len(SLOW_MARKS))

    groups = {item.nodeid: group(item) for item in items}
    ranks: dict[str, int] = {}  # a group's: its slowest test's
    for item in items:
        name = groups[item.nodeid]
        item.add_marker(pytest.mark.xdist_group(name))
        ranks[name] = min(ranks.get(name, len(SHARED_BUILDS) + len(SLOW_MARKS)), rank(item, name))
    items.sort(key=lambda item: ranks[groups[item.nodeid]])  # stable: modules keep their order
    return (yield)


@pytest.fixture(scope="module")
def local_ray():
    """A real local Ray for the tests of one module (stages that run Ray Data operations)."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture
def cfg():
    """The default (sample) configuration."""
    return load_config([])


@pytest.fixture
def ctx(tmp_path):
    """A build context whose teachers are two loopback API models (tests start the server)."""
    from pipeline.engine.stage import BuildContext

    cfg = load_config(["teacher=openai", "teacher.model=judge-1", "teacher2=openai",
                       "teacher2.model=judge-2", f"teacher.cache_dir={tmp_path}/cache",
                       f"teacher2.cache_dir={tmp_path}/cache", "teacher.max_attempts=1",
                       "teacher2.max_attempts=1"])
    return BuildContext(cfg)


def messages(*turns: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": r, "content": c} for r, c in turns]


def chatml(chat: list[dict], generation_prompt: bool) -> str:
    """SmolLM2-Instruct's chat format (ChatML, its own system line when the chat has none)."""
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in chat)
    if chat[0]["role"] != "system":
        text = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
                "Hugging Face<|im_end|>\n") + text
    return text + ("<|im_start|>assistant\n" if generation_prompt else "")


def pair(source: str, index: int, prompt: str, chosen: str = "good", rejected: str = "bad") -> dict:
    """A canonical single-turn pair, still in play."""
    return {"pair_id": f"{source}-{index}-{hash(prompt) & 0xffff:04x}", "source": source,
            "source_index": index, "outcome": "",
            "prompt": [{"role": "user", "content": prompt}],
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}]}


def run_stage(stage_cls, params, rows, overrides=()) -> dict:
    """Run a stage as the engine does, on a real Ray; rows by (source, source_index)."""
    import pyarrow as pa
    import ray

    from pipeline.engine.runner import apply_stage
    from pipeline.engine.schema import CANONICAL_COLUMNS, conform
    from pipeline.engine.stage import BuildContext

    stage = stage_cls(params, BuildContext(load_config(list(overrides))))
    given = (*CANONICAL_COLUMNS, *(c for c in stage.inputs if c not in CANONICAL_COLUMNS))
    columns = (*given, *(c for c in stage.outputs if c not in given))
    ds = ray.data.from_arrow(conform(pa.Table.from_pylist(rows), given))
    out = apply_stage(ds, stage, columns)
    got = {(r["source"], r["source_index"]): r for r in out.take_all()}
    assert len(got) == len(rows), "a stage marks rows, it never drops them"
    return got


@pytest.fixture(scope="session")
def s3():
    """A local S3-compatible server (moto) on loopback, with a bucket; yields the environment
    that points boto/s3fs at it (also for build subprocesses). One per session: s3fs keeps
    its clients, and with them the endpoint, for the life of the process."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import fsspec

    fsspec.filesystem("s3").mkdir("rubricforge-test")
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.stop()


def start_build(*overrides: str, env: dict[str, str] | None = None,
                new_session: bool = False) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "pipeline.cli", "build", *overrides]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **SECRETS, **(env or {})}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=new_session,
                            preexec_fn=_interruptible)


def _interruptible() -> None:
    """The build as a terminal's foreground job: SIGINT raises KeyboardInterrupt. A shell that
    runs `make test` in the background makes its children ignore SIGINT, and Python then never
    installs its handler, so a Ctrl-C test would send a signal nothing hears."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# The real local teacher in the shared real build: room for a whole trace of the grammar's
# short fields; sampled, since greedy decoding makes the 135M model repeat itself until
# `repetitive` or `truncated` turns most traces away (unseeded: vLLM's CPU sampler fails seeded
# requests; the warm rerun reads the answers from the cache)
E2E_MAX_TOKENS = 384
E2E_SAMPLING = ("temperature=0.8", "seed=null")


def build(*overrides: str, timeout: int = 1500, env: dict[str, str] | None = None,
          proc: subprocess.Popen | None = None) -> subprocess.CompletedProcess:
    """Run a build to its end (or finish one started with `start_build`)."""
    proc = proc or start_build(*overrides, env=env)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the build stops its teacher server and Ray
        out, _ = proc.communicate(timeout=120)
        pytest.fail(f"build timed out:\n{out[-3000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


@pytest.fixture(scope="session")
def judge():
    """The loopback teacher of the shared sample build: a well-formed trace that quotes both
    answers, half its verdicts right, the pass-2 hint followed (bench/slow_api.py)."""
    from bench import slow_api

    from fake_openai import FakeOpenAI

    with FakeOpenAI(lambda body, n: (200, slow_api.answer(body, 90))) as server:
        yield server


@pytest.fixture(scope="session")
def runs(tmp_path_factory, judge):
    """The sample build (with an `rl` part, a fourth source and the label audit) on the loopback
    teacher, the passes chained through the OpenAI client, twice with one cache, the first
    also publishing: every source's sample row is accounted for here. Shared by the
    end-to-end, S3, cluster and publish tests."""
    root = tmp_path_factory.mktemp("e2e")
    common = [*(f"{key}{setting}" for key in ("teacher", "teacher2") for setting in (
        "=openai", ".model=loopback-judge", f".base_url={judge.base_url}")),
              f"teacher.cache_dir={root}/cache", "+source@sources.helpsteer3=helpsteer3",
              "recipe.stages.label_audit={}"]
    # the first also publishes (`publish.repo`), with the real client, to a loopback Hub; the
    # second, a warm rerun, is the three-node build's model (tests/test_e2e.py)
    from fake_hub import FakeHub

    with FakeHub() as hub:
        first = build(f"output.dir={root}/first", *common, f"publish.repo={PUBLISHED}",
                      env={"HF_ENDPOINT": hub.endpoint, "HF_HUB_OFFLINE": "0",
                           "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(root / "hf-home")})
        assert first.returncode == 0, first.stdout[-4000:]
        published = (hub.endpoint, hub.files(PUBLISHED))
    second = build(f"output.dir={root}/second", *common)
    assert second.returncode == 0, second.stdout[-4000:]
    return {"first": (root / "first", first.stdout), "second": (root / "second", second.stdout),
            "root": root, "common": common, "hub": published,
            "hf_cache": str(tmp_path_factory.mktemp("hf-cache"))}


PUBLISHED = "me/judge-traces"  # the repo `runs` publishes to


@pytest.fixture(scope="session")
def real(tmp_path_factory, installed):
    """The one build that runs the real local teacher (SmolLM2-135M on vLLM, CPU), twice with
    one cache; the trainers train on its output. Pass 1 asks the local vLLM server through the
    OpenAI API, pass 2 the offline engines in Ray actors: both ways of running the embedded
    model, on a seeded handful of the shortest sources' pairs (the rest is `over_limit`). The
    warm rerun is the installed wheel's, run from an empty directory into its default output
    (`build/sample`), as a user who installed rubricforge runs it."""
    root = tmp_path_factory.mktemp("e2e-real")
    common = [f"teacher.cache_dir={root}/cache", "teacher2=vllm_engines",
              *(f"{key}.{s}" for key in ("teacher", "teacher2")
                for s in (f"max_tokens={E2E_MAX_TOKENS}", *E2E_SAMPLING)),
              "~source@sources.code_preference_pairs", *REAL_LIMITS]
    first = build(f"output.dir={root}/first", *common, timeout=2700)
    assert first.returncode == 0, first.stdout[-4000:]
    empty = root / "empty"
    empty.mkdir()
    second = run_installed(installed, ["build", *common], empty, **SECRETS)
    assert second.returncode == 0, (second.stdout + second.stderr)[-4000:]
    return {"first": (root / "first", first.stdout),
            "second": (empty / "build" / "sample", second.stdout + second.stderr),
            "root": root, "common": common, "hf_cache": str(tmp_path_factory.mktemp("hf-cache"))}


# A handful of pairs for the real teacher, math and chat (about 9 for pass 1): both parts
REAL_LIMITS = ("sources.skywork.limit=10", "sources.math_step_dpo.limit=14")


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """rubricforge's wheel, built from this tree as a user's `pip wheel .` builds it."""
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                           "--no-build-isolation", "--wheel-dir", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    found = sorted(out.glob("rubricforge-*.whl"))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="session")
def installed(wheel, tmp_path_factory) -> Path:
    """A new environment with the wheel installed (not editable). Its dependencies are this
    environment's, seen through a .pth file (installing them again takes minutes and the
    network); rubricforge itself comes from the wheel alone: this environment has it only as
    an editable finder, which a .pth path line does not load."""
    env = tmp_path_factory.mktemp("wheel-env")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    install_wheel(wheel, env / "bin" / "python")
    site = next((env / "lib").glob("python3*/site-packages"))
    deps = next(p for p in map(Path, sys.path) if p.name == "site-packages" and p.is_dir()
                and str(p).startswith(sys.prefix))
    (site / "rubricforge-deps.pth").write_text(f"{deps}\n")
    return env


def run_installed(env: Path, args: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess:
    """The installed tool, as a user's shell runs it: on PATH, no PYTHONPATH, no checkout."""
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    clean.update(PATH=f"{env / 'bin'}{os.pathsep}{clean['PATH']}", HF_HUB_OFFLINE="1",
                 HF_DATASETS_OFFLINE="1", **extra)
    return subprocess.run([str(env / "bin" / "rubricforge"), *args], cwd=cwd, env=clean,
                          capture_output=True, text=True, timeout=900)


def install_wheel(wheel: Path, python: Path) -> None:
    """Install the wheel, and only it, into the environment of `python` (non-editable)."""
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                           "--quiet", "--no-deps", "--force-reinstall", "--no-index", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
