"""A loopback server that plays the Hugging Face Hub's API for dataset repos, for the real
`huggingface_hub` client (`HF_ENDPOINT` pointed at it, `HF_HUB_DISABLE_XET=1` so large files
take the LFS protocol): repo creation, repo info, the file tree, preupload, the LFS batch API
with uploads, and NDJSON commits. It records every commit and every LFS upload, and can refuse
commits, to play an interrupted publish.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import yaml

from fake_openai import _Loopback

LFS_SUFFIXES = (".parquet", ".png", ".arrow")
GITATTRIBUTES = "*.parquet filter=lfs diff=lfs merge=lfs -text\n"


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    commits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sha(self) -> str:
        return hashlib.sha1(json.dumps(self.commits).encode()).hexdigest()

    def put_regular(self, path: str, data: bytes) -> None:
        self.files[path] = {"oid": git_oid(data), "size": len(data), "lfs": None, "data": data}


class FakeHub(_Loopback):
    """`with FakeHub() as hub:` then `HF_ENDPOINT=hub.endpoint`."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.lfs_uploads: Counter[str] = Counter()
        self.refuse_commits = 0  # the next n commits answer 500
        lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, payload: Any = None,
                       headers: dict[str, str] | None = None) -> None:
                body = json.dumps(payload if payload is not None else {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                with lock:
                    hub._get(self)

            def do_POST(self) -> None:  # noqa: N802
                body = self._body()
                with lock:
                    hub._post(self, body)

            def do_PUT(self) -> None:  # noqa: N802
                body = self._body()
                with lock:
                    oid = self.path.rsplit("/", 1)[-1]
                    if hashlib.sha256(body).hexdigest() != oid:
                        return self._reply(400, {"error": "sha256 mismatch"})
                    hub.lfs[oid] = body
                    hub.lfs_uploads[oid] += 1
                    self._reply(200)

            def log_message(self, *args: Any) -> None:
                pass

        self._serve(Handler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def files(self, repo: str) -> dict[str, bytes]:
        """What the repo's main branch holds: path -> content."""
        return {p: (f["data"] if f["lfs"] is None else self.lfs[f["lfs"]])
                for p, f in self.repos[repo].files.items()}

    # -- routes -------------------------------------------------------------------------------

    def _repo(self, h: Any, repo: str) -> Repo | None:
        if repo not in self.repos:
            h._reply(404, {"error": "Repository not found"},
                     {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})
            return None
        return self.repos[repo]

    def _get(self, h: Any) -> None:
        path = h.path.split("?", 1)[0]
        if m := re.fullmatch(r"/api/datasets/([^/]+/[^/]+)(?:/revision/[^/]+)?", path):
            if (repo := self._repo(h, m.group(1))) is not None:
                h._reply(200, {"id": m.group(1), "sha": repo.sha, "private": False,
                               "siblings": [{"rfilename": p} for p in sorted(repo.files)]})
        elif m := re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/tree/[^/]+(?:/.*)?", path):
            if (repo := self._repo(h, m.group(1))) is not None:
                h._reply(200, [{"type": "file", "path": p, "size": f["size"], "oid": f["oid"],
                                **({"lfs": {"oid": f["lfs"], "size": f["size"],
                                            "pointerSize": 130}} if f["lfs"] else {})}
                               for p, f in sorted(repo.files.items())])
        else:
            h._reply(404, {"error": f"no route {path}"})

    def _post(self, h: Any, body: bytes) -> None:
        path = h.path.split("?", 1)[0]
        if path == "/api/repos/create":
            req = json.loads(body)
            name = f"{req.get('organization') or 'me'}/{req['name']}"
            if name in self.repos:
                return h._reply(409, {"error": "You already created this dataset repo",
                                      "url": f"{self.endpoint}/datasets/{name}"})
            repo = self.repos[name] = Repo()
            repo.put_regular(".gitattributes", GITATTRIBUTES.encode())
            repo.commits.append({"summary": "initial commit", "operations": 1})
            return h._reply(200, {"url": f"{self.endpoint}/datasets/{name}", "name": name})
        if m := re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/preupload/[^/]+", path):
            if (repo := self._repo(h, m.group(1))) is None:
                return None
            files = []
            for f in json.loads(body)["files"]:
                lfs = f["path"].endswith(LFS_SUFFIXES)
                have = repo.files.get(f["path"])
                oid = (have["lfs"] if lfs else have["oid"]) if have else None
                files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular",
                              "shouldIgnore": False, "oid": oid})
            return h._reply(200, {"files": files, "commitOid": repo.sha})
        if m := re.fullmatch(r"/datasets/([^/]+/[^/]+)\.git/info/lfs/objects/batch", path):
            objects = []
            for o in json.loads(body)["objects"]:
                entry = {"oid": o["oid"], "size": o["size"]}
                if o["oid"] not in self.lfs:
                    entry["actions"] = {"upload": {"href": f"{self.endpoint}/lfs/{o['oid']}"}}
                objects.append(entry)
            return h._reply(200, {"transfer": "basic", "objects": objects})
        if m := re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/commit/[^/]+", path):
            if (repo := self._repo(h, m.group(1))) is None:
                return None
            if self.refuse_commits:
                self.refuse_commits -= 1
                return h._reply(500, {"error": "Internal Error: commit interrupted"})
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            header = next(x["value"] for x in lines if x["key"] == "header")
            ops = [x for x in lines if x["key"] != "header"]
            for op in ops:
                v = op["value"]
                if op["key"] == "lfsFile" and v["oid"] not in self.lfs:
                    return h._reply(400, {"error": f"LFS object {v['oid']} was never uploaded"})
                if op["key"] == "deletedFile" and v["path"] not in repo.files:
                    return h._reply(404, {"error": "A file with this name doesn't exist"})
            for op in ops:
                v = op["value"]
                if op["key"] == "file":
                    repo.put_regular(v["path"], base64.b64decode(v["content"]))
                elif op["key"] == "lfsFile":
                    repo.files[v["path"]] = {"oid": git_oid(v["oid"].encode()), "size": v["size"],
                                             "lfs": v["oid"], "data": None}
                elif op["key"] == "deletedFile":
                    del repo.files[v["path"]]
            repo.commits.append({"summary": header["summary"], "operations": len(ops)})
            return h._reply(200, {"commitUrl": f"{self.endpoint}/datasets/{m.group(1)}/commit/"
                                               f"{repo.sha}", "commitOid": repo.sha,
                                  "success": True})
        if path == "/api/validate-yaml":  # the card's metadata, checked before a commit
            content = json.loads(body)["content"]
            try:
                header = yaml.safe_load(content.split("---")[1]) if content.startswith("---") else {}
            except yaml.YAMLError as exc:
                return h._reply(400, {"errors": [{"message": str(exc).splitlines()[0]}]})
            if not isinstance(header, dict):
                return h._reply(400, {"errors": [{"message": "metadata is not a mapping"}]})
            return h._reply(200, {"warnings": []})
        if re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/branch/[^/]+", path):
            return h._reply(200)
        return h._reply(404, {"error": f"no route {path}"})
