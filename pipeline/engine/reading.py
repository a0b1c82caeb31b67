"""Reading a published dataset through `datasets`: from the Hub, from local files, or from the
small schema-exact sample that ships with rubricforge. Sources and benchmarks share it."""

from __future__ import annotations

import glob
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

import datasets
import fsspec

from pipeline.engine import provenance
from pipeline.engine.config import ConfigError, RunError

log = logging.getLogger("rubricforge")


class InputLoadError(RunError):
    """A dataset that cannot be read at all; the message says which and what to do. `files`:
    the local files that were read, when they were (a reader row by row may take them)."""

    def __init__(self, message: str, files: list[str] | None = None) -> None:
        super().__init__(message)
        self.files = files


def read_dataset(key: str, cfg: Any, sample: Path | None,
                 features: datasets.Features | None = None) -> datasets.Dataset:
    """One split of the dataset `cfg` describes (see `read_with_provenance`)."""
    return read_with_provenance(key, cfg, sample, features)[0]


def read_with_provenance(key: str, cfg: Any, sample: Path | None,
                         features: datasets.Features | None = None
                         ) -> tuple[datasets.Dataset, dict[str, Any]]:
    """One split of the dataset `cfg` describes (hub_id, revision, subset, data_dir, split,
    data_files), and what was read (pipeline/engine/provenance.py).

    `key` is where it is configured (`sources.skywork`), for the error message. `data_files`,
    when set, are read whatever the recipe; else `sample`, when given, instead of the Hub.
    Local files are listed first: an empty one is said (it adds no rows), and a file that
    cannot be read is named with the real cause.
    """
    files: list[str] | None = None
    if cfg.data_files:
        files = local_files(key, cfg.data_files)
        path, split = builder_of(key, files or [cfg.data_files]), "train"
        kwargs: dict[str, Any] = {"data_files": files if files is not None else cfg.data_files}
        where = f"{key}.data_files={cfg.data_files}"
    elif sample is not None:
        path, kwargs, split = "json", {"data_files": str(sample)}, "train"
        where = f"sample file {sample}"
    elif cfg.hub_id:
        data_dir = getattr(cfg, "data_dir", None)
        path, split = cfg.hub_id, cfg.split
        kwargs = {"name": cfg.subset, "revision": cfg.revision, "data_dir": data_dir}
        where = f"Hub dataset {cfg.hub_id}@{cfg.revision}" + (f", folder {data_dir}"
                                                              if data_dir else "")
    elif getattr(cfg, "url", None) and cfg.files:
        urls = [f"{cfg.url.rstrip('/')}/{quote(f)}" for f in cfg.files]
        path, kwargs, split = builder_for(cfg.files[0]), {"data_files": urls}, "train"
        where = f"{len(urls)} files under {cfg.url}"
    else:
        raise InputLoadError(f"{key}: neither hub_id nor data_files is set; set one of them")
    if path == "json":
        # `datasets` would otherwise JSON-encode a whole column, for every row of the file and
        # of the files after it, when one row has a number where text belongs
        kwargs["on_mixed_types"] = None
    try:
        # load_dataset's own steps, so that the files it resolved (and their commit) are known
        builder = datasets.load_dataset_builder(path, features=features, **kwargs)
        builder.download_and_prepare()
        ds = builder.as_dataset(split=split)
    except Exception as exc:  # datasets raises many kinds; the user needs one clear line
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "Offline mode" in msg and "://" in str(kwargs.get("data_files") or ""):
            raise InputLoadError(f"{key}: cannot read {where}: `datasets` is in offline mode; "
                                 f"set HF_DATASETS_OFFLINE=0 to read remote files, or point "
                                 f"{key}.data_files at a local copy") from None
        if files:
            bad = _first_unreadable(path, files, features) if len(files) > 1 else files[0]
            raise InputLoadError(f"{key}: cannot read {bad}: {cause_of(exc)}; fix or remove "
                                 f"that file (data_files={cfg.data_files})", files) from None
        raise InputLoadError(
            f"{key}: cannot read {where}: {msg}. Download it first, or point {key}.data_files "
            f"at local parquet/json files."
        ) from None
    if files is not None:
        read = provenance.files_read(files, cfg.data_files)
    elif sample is not None:
        read = provenance.sample_read(sample)
    else:  # the Hub, or URLs: what `datasets` resolved
        resolved = provenance.resolved_files(builder.config.data_files, split)
        read = (provenance.hub_read(cfg, kwargs["data_dir"], resolved) if cfg.hub_id
                else {"kind": "urls", "files": resolved})
    return ds, read


def local_files(key: str, data_files: str) -> list[str] | None:
    """The local files a `data_files` glob names, empty ones left out and said (None: remote)."""
    if "://" in data_files:
        return None
    files = sorted(glob.glob(data_files, recursive=True))
    empty = [f for f in files if Path(f).is_file() and Path(f).stat().st_size == 0]
    for f in empty:
        log.warning("%s: %s is empty: it adds no rows", key, f)
    if files and len(empty) == len(files):
        raise InputLoadError(f"{key}: every file of data_files={data_files} is empty")
    return [f for f in files if f not in empty]


def cause_of(exc: BaseException) -> str:
    """What really went wrong, from the chain `datasets` wraps it in ("An error occurred while
    generating the dataset" says nothing): the messages below that layer, joined."""
    chain, seen = [], set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    inner = [c for c in chain if type(c).__name__ != "DatasetGenerationError"
             and "error occurred while generating" not in str(c)]
    parts = []
    for c in inner or chain:
        text = " ".join(str(c).split()) or type(c).__name__
        if text not in parts:
            parts.append(text)
    return "; ".join(parts)[:400]


def _first_unreadable(builder: str, files: list[str], features: datasets.Features | None) -> str:
    """Which of several files breaks a load (asked only once a load failed)."""
    for f in files:
        try:
            datasets.load_dataset(builder, data_files=f, split="train", features=features)
        except Exception:  # noqa: BLE001 - any failure names this file
            return f
    return ", ".join(files)


def check_data_files(key: str, data_files: str) -> None:
    """Before any work: local `data_files` must match a file (remote URLs are read later)."""
    if "://" in data_files:
        return
    files = glob.glob(data_files, recursive=True)
    if not files:
        raise ConfigError(f"{key}.data_files={data_files} matches no file; "
                          "download the data there first, or fix the path")
    try:
        builder_of(key, sorted(files))
    except InputLoadError as exc:
        raise ConfigError(f"{exc}") from None


# Compressed files are read through `datasets` (which decompresses these) and row by row through
# fsspec; the format is the suffix before the compression's.
COMPRESSIONS = (".gz", ".zst", ".zstd", ".bz2", ".xz")


def builder_for(data_files: str) -> str:
    """The `datasets` builder for local files, from their extension (`x.jsonl.gz` is JSON)."""
    name = str(data_files).rstrip("*").lower()
    for ending in COMPRESSIONS:
        name = name.removesuffix(ending)
    return {".jsonl": "json", ".json": "json", ".csv": "csv"}.get(Path(name).suffix, "parquet")


def builder_of(key: str, files: list[str]) -> str:
    """The one builder of all these files: a glob over a folder may hold several formats, and
    `datasets` reads one format per load."""
    builders = {f: builder_for(f) for f in files}
    if len(set(builders.values())) > 1:
        first = {b: f for f, b in reversed(builders.items())}
        shown = ", ".join(f"{f} ({b})" for b, f in sorted(first.items()))
        raise InputLoadError(f"{key}: data_files mixes formats: {shown}; narrow the glob to "
                             "one format (e.g. *.jsonl.gz)")
    return next(iter(builders.values()))


# -- row by row, for local JSON files the fast reader refuses ----------------------------------


def read_json_rows(key: str, files: list[str], features: datasets.Features
                   ) -> tuple[datasets.Dataset, dict[int, tuple[str, str]]]:
    """The rows of local JSON / JSON Lines files, one at a time: a row that is not JSON, not
    UTF-8, or not of the declared types stays in place as an empty row, and its index maps to
    (reason, detail) naming the file, line and field, so the source quarantines it while the
    rest of the file is kept. Fields the source does not declare (per-domain files with extra
    columns) are left out, and said once per file. Used only once `datasets` refused the files
    as a whole."""
    rows: list[dict[str, Any]] = []
    problems: dict[int, tuple[str, str]] = {}
    blank = dict.fromkeys(features)
    for path in files:
        try:
            with fsspec.open(path, "rb", compression="infer") as f:  # .gz, .zst, .bz2, .xz
                data = f.read()
        except (OSError, EOFError, ValueError) as exc:  # a cut or mislabelled archive
            raise InputLoadError(f"{key}: cannot decompress {path}: {cause_of(exc)}; fix or "
                                 "remove that file") from None
        if data.lstrip().startswith(b"["):  # one JSON array: parsed whole or not at all
            try:
                records = json.loads(data.decode("utf-8"))
            except ValueError as exc:
                raise InputLoadError(f"{key}: cannot read {path}: {exc}; fix or remove that "
                                     "file") from None
            lines = [(i + 1, r, None) for i, r in enumerate(records)]
        else:
            lines = [(i + 1, *_parse_line(raw)) for i, raw in enumerate(data.splitlines())
                     if raw.strip()]
        extra: dict[str, int] = {}
        for line, record, problem in lines:
            where = f"{path}:{line}"
            if problem is None and isinstance(record, dict):
                for name in set(record) - set(features):
                    extra[name] = extra.get(name, 0) + 1
                record = {k: v for k, v in record.items() if k in features}
            if problem is not None:  # not JSON, not UTF-8
                problem = (problem[0], f"{where}: {problem[1]}")
            elif bad := type_problem(record, features, ""):
                problem = ("bad_type", f"{where}: {bad}")
            elif half := lone_surrogate(record, ""):
                problem = ("bad_encoding", f"{where}: {half}")
            if problem:
                problems[len(rows)] = problem
                rows.append(blank)
            else:
                rows.append(record)
        if extra:
            log.warning("%s: %s has fields the source does not read, left out: %s", key, path,
                        ", ".join(f"{k} ({n} rows)" for k, n in sorted(extra.items())))
    return datasets.Dataset.from_list(rows, features=features), problems


def _parse_line(raw: bytes) -> tuple[Any, tuple[str, str] | None]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, ("bad_encoding", f"not UTF-8: {exc}")
    try:
        return json.loads(text), None
    except ValueError as exc:
        return None, ("bad_json", str(exc))


def lone_surrogate(value: Any, path: str) -> str | None:
    """Where `value` holds half of a UTF-16 surrogate pair (JSON allows `"\\ud800"`, but it is
    no character and cannot be written as UTF-8): said, never turned into "" or dropped."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            code = ord(value[exc.start])
            return f"{path or 'the row'} holds a lone surrogate \\u{code:04x}, which is not text"
        return None
    items = (value.items() if isinstance(value, dict) else
             enumerate(value) if isinstance(value, list) else ())
    for k, v in items:
        where = f"{path}[{k}]" if isinstance(k, int) else (f"{path}.{k}" if path else k)
        if (found := lone_surrogate(v, where)):
            return found
    return None


def type_problem(value: Any, feature: Any, path: str) -> str | None:
    """What in `value` is not of the declared `feature` type (None: it conforms); a missing
    value is the source's mapping to judge, not a type error."""
    if value is None:
        return None
    name = path or "the row"
    if isinstance(feature, datasets.Value):
        dtype = feature.dtype
        ok = {"string": isinstance(value, str), "large_string": isinstance(value, str),
              "bool": isinstance(value, bool)}.get(dtype)
        if ok is None and dtype.startswith(("int", "uint")):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif ok is None and dtype.startswith("float"):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok in (True, None) else (
            f"{name} is {type(value).__name__}, expected {dtype}")
    inner = feature[0] if isinstance(feature, list) else getattr(feature, "feature", None)
    if inner is not None:
        if not isinstance(value, list):
            return f"{name} is {type(value).__name__}, expected a list"
        return next((p for i, v in enumerate(value)
                     if (p := type_problem(v, inner, f"{path}[{i}]"))), None)
    if isinstance(feature, dict):
        if not isinstance(value, dict):
            return f"{name} is {type(value).__name__}, expected an object"
        extra = sorted(set(value) - set(feature))
        if extra:
            return f"{name} has an unexpected field {extra[0]!r}"
        return next((p for k, f in feature.items()
                     if (p := type_problem(value.get(k), f, f"{path}.{k}" if path else k))), None)
    return None
