"""A local stand-in for the Hugging Face Hub, enough for huggingface_hub's real client.

An ``http.server`` on 127.0.0.1 (port 0) in a thread. It serves:

* ``HEAD/GET /{repo_id}/resolve/{revision}/{filename}`` as the Hub does: small text files
  answer 200 with ``ETag`` (a git blob sha1), ``X-Repo-Commit`` and ``Content-Length``;
  weights and images (LFS files on the Hub) answer 302 to a "CDN" URL on another host
  (``localhost`` instead of ``127.0.0.1``) with ``X-Linked-Etag`` (the sha256),
  ``X-Linked-Size`` and ``X-Repo-Commit``, so the client takes the metadata from the
  redirect and downloads from the CDN. Unknown repo / revision / file: 404 with
  ``X-Error-Code`` ``RepoNotFound`` / ``RevisionNotFound`` / ``EntryNotFound``.
* ``GET /api/models/{repo_id}[/revision/{rev}]``: model info (sha, siblings).
* Publishing: ``POST /api/repos/create``, ``POST /api/validate-yaml``,
  ``POST /api/models/{repo_id}/preupload/{rev}`` (every file "regular", so the content
  travels inline in the commit), ``POST /api/models/{repo_id}/commit/{rev}`` (the NDJSON
  commit: header + base64 files) and ``POST /api/models/{repo_id}/branch/{branch}``.

Faults for tests: ``truncate[(repo, filename)] = n`` serves only the first ``n`` bytes and
announces that size (a consistently truncated file); ``cut[(repo, filename)] = n`` announces
the full size but sends ``n`` bytes (a broken transfer). ``log`` records ``(method, path)``.
"""
from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".png", ".bin", ".pt")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubStandin:
    def __init__(self) -> None:
        self.repos: dict[str, dict] = {}  # repo_id -> {"branches": {name: sha}, "commits": {sha: {path: bytes}}, "private": bool}
        self.log: list[tuple[str, str]] = []
        self.truncate: dict[tuple[str, str], int] = {}
        self.cut: dict[tuple[str, str], int] = {}
        self.auth: list[str | None] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ---- repository content ------------------------------------------------------------------
    def commit(self, repo_id: str, files: dict[str, bytes] | str | Path, *, branch: str = "main",
               replace: bool = True) -> str:
        """Commit ``files`` (a dict or a folder) to ``branch``; returns the new commit sha."""
        if not isinstance(files, dict):
            folder = Path(files)
            files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
        with self._lock:
            repo = self.repos.setdefault(repo_id, {"branches": {}, "commits": {}, "private": False})
            parent = repo["branches"].get(branch)
            tree = {} if (replace or parent is None) else dict(repo["commits"][parent])
            tree.update(files)
            h = hashlib.sha1((parent or "").encode())
            for path in sorted(tree):
                h.update(path.encode() + b"\0" + hashlib.sha256(tree[path]).digest())
            h.update(str(len(repo["commits"])).encode())
            sha = h.hexdigest()
            repo["commits"][sha] = tree
            repo["branches"][branch] = sha
            return sha

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        repo = self.repos[repo_id]
        return repo["commits"][repo["branches"].get(revision, revision)]

    def count(self, method: str, filename: str) -> int:
        """How many ``method`` requests asked for a path ending in ``/filename``."""
        return sum(1 for m, p in self.log if m == method and unquote(p).endswith("/" + filename))

    # ---- server --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def cdn(self) -> str:
        assert self._server is not None
        return f"http://localhost:{self._server.server_address[1]}"

    def start(self) -> "HubStandin":
        standin = self

        class Handler(_Handler):
            hub = standin

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "HubStandin":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    hub: HubStandin
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    # ---- plumbing ---------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_length: int | None = None) -> None:
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Type", "application/octet-stream")
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if content_length is None else content_length))
        if content_length is not None and content_length != len(body):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, status: int, obj, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        self._json(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message, **(headers or {})})

    def _body(self) -> bytes:
        return self._raw

    def _repo(self, repo_id: str):
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
        return repo

    def _resolve_rev(self, repo, revision: str):
        if revision in repo["branches"]:
            return repo["branches"][revision]
        if revision in repo["commits"]:
            return revision
        self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return None

    # ---- verbs ------------------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def _route(self) -> None:
        path = urlsplit(self.path).path
        n = int(self.headers.get("Content-Length") or 0) if self.command == "POST" else 0
        self._raw = self.rfile.read(n) if n else b""  # always drain the body: the connection is reused
        self.hub.log.append((self.command, path))
        self.hub.auth.append(self.headers.get("Authorization"))
        parts = path.strip("/").split("/")
        try:
            if parts[0] == "cdn":
                return self._cdn(parts[1:])
            if parts[0] == "api":
                return self._api(parts[1:])
            if len(parts) >= 5 and parts[2] == "resolve":
                repo_id = f"{parts[0]}/{parts[1]}"
                return self._resolve(repo_id, unquote(parts[3]), "/".join(unquote(p) for p in parts[4:]))
            self._error(404, "EntryNotFound", f"no route for {path}")
        except BrokenPipeError:
            pass

    def _resolve(self, repo_id: str, revision: str, filename: str) -> None:
        repo = self._repo(repo_id)
        if repo is None:
            return
        commit = self._resolve_rev(repo, revision)
        if commit is None:
            return
        tree = repo["commits"][commit]
        if filename not in tree:
            return self._error(404, "EntryNotFound", f"{filename} does not exist on {revision}",
                               {"X-Repo-Commit": commit})
        data = tree[filename]
        key = (repo_id, filename)
        if key in self.hub.truncate:
            data = data[: self.hub.truncate[key]]
        if filename.endswith(LFS_SUFFIXES):
            sha = hashlib.sha256(data).hexdigest()
            location = f"{self.hub.cdn}/cdn/{repo_id}/{commit}/{quote(filename)}"
            return self._send(302, b"", {
                "Location": location, "X-Repo-Commit": commit, "ETag": f'"{git_blob_sha1(data)}"',
                "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data)),
            })
        self._send(200, data, {"X-Repo-Commit": commit, "ETag": f'"{git_blob_sha1(data)}"',
                               "Content-Type": "text/plain; charset=utf-8"})

    def _cdn(self, parts: list[str]) -> None:
        repo_id, commit, filename = f"{parts[0]}/{parts[1]}", parts[2], unquote("/".join(parts[3:]))
        try:
            data = self.hub.repos[repo_id]["commits"][commit][filename]
        except KeyError:
            return self._send(404, b"NoSuchKey")
        key = (repo_id, filename)
        if key in self.hub.truncate:
            data = data[: self.hub.truncate[key]]
        if key in self.hub.cut:
            short = data[: self.hub.cut[key]]
            return self._send(200, short, content_length=len(short))
        self._send(200, data)

    def _api(self, parts: list[str]) -> None:
        if parts[:2] == ["repos", "create"] and self.command == "POST":
            req = json.loads(self._body() or b"{}")
            repo_id = f"{req.get('organization') or 'user'}/{req['name']}"
            url = f"{self.hub.url}/{repo_id}"
            if repo_id in self.hub.repos:
                return self._json(409, {"error": "You already created this model repo", "url": url})
            self.hub.commit(repo_id, {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"})
            self.hub.repos[repo_id]["private"] = req.get("visibility") == "private" or bool(req.get("private"))
            return self._json(200, {"url": url, "name": repo_id})
        if parts[:1] == ["validate-yaml"]:
            self._body()
            return self._json(200, {"errors": [], "warnings": []})
        if len(parts) >= 3 and parts[0] == "models":
            repo_id = f"{parts[1]}/{parts[2]}"
            rest = parts[3:]
            repo = self._repo(repo_id)
            if repo is None:
                return
            if not rest or rest[0] == "revision":
                commit = self._resolve_rev(repo, unquote(rest[1]) if len(rest) > 1 else "main")
                if commit is None:
                    return
                return self._json(200, {"id": repo_id, "modelId": repo_id, "sha": commit,
                                        "private": repo["private"],
                                        "siblings": [{"rfilename": f} for f in sorted(repo["commits"][commit])]})
            if rest[0] == "preupload":
                req = json.loads(self._body() or b"{}")
                return self._json(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                                   "oid": None} for f in req.get("files", [])]})
            if rest[0] == "branch" and self.command == "POST":
                self._body()
                branch = unquote("/".join(rest[1:]))
                if branch in repo["branches"]:
                    return self._error(409, "BranchExists", f"branch {branch} already exists")
                repo["branches"][branch] = repo["branches"]["main"]
                return self._json(200, {})
            if rest[0] == "commit" and self.command == "POST":
                revision = unquote("/".join(rest[1:]))
                if revision not in repo["branches"]:
                    return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                files: dict[str, bytes] = {}
                for line in self._body().splitlines():
                    item = json.loads(line)
                    if item["key"] == "file":
                        v = item["value"]
                        files[v["path"]] = base64.b64decode(v["content"])
                    elif item["key"] != "header":
                        return self._error(400, "BadRequest", f"stand-in supports inline files only, got {item['key']}")
                sha = self.hub.commit(repo_id, files, branch=revision, replace=False)
                return self._json(200, {"commitUrl": f"{self.hub.url}/{repo_id}/commit/{sha}", "commitOid": sha,
                                        "success": True})
        self._error(404, "EntryNotFound", f"no API route for /api/{'/'.join(parts)}")
