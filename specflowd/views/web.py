"""`specflowd web`: the live page of the fleet, served read-only over HTTP by the standard library's
ThreadingHTTPServer (the HTTP is its; no request is parsed here by hand).

- `/` the page (one HTML file, its script and its style, shipped in `views/static/`).
- `/events` server-sent events: first the whole board (`snapshot`), then one event per change, as
  the board's scan finds them (`commit`, `orchestration`, `removed`, `problems`, `feed`). A watcher
  thread sleeps on inotify (`repo/follow.Waker`) until a design-docs ref or a state file is written,
  so a page open for an hour costs nothing while nothing changes: no timer runs, no client is polled.
  One hub thread writes every event, encoded once, to every open stream without blocking; a stream
  that falls too far behind is closed, and the browser's reconnect (with Last-Event-ID) is sent what
  it missed, or the whole board again.
- `/api/overview` (the board), `/api/fleet` (`fleet --json`), `/api/orchestrations/<id>` (`status
  --json ID`), `/api/feed/<spec>` (a spec's feed), `/api/commits/<sha>` (an evidence commit).

Safe by default: bound to loopback; GET and HEAD only; a Content-Security-Policy that allows the
page's own script and style and nothing inline; a Host header that is not this machine's is refused
(a DNS-rebinding page cannot read the fleet); the page puts every string into the DOM as text."""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import logging
import os
import re
import secrets
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from specflowd.core import ids
from specflowd.daemon import statefile
from specflowd.errors import UserError
from specflowd.repo import feed, git
from specflowd.repo.follow import REPLACED, Waker
from specflowd.repo.project import Project
from specflowd.views.board import Board, Event
from specflowd.views.fleet import gather
from specflowd.views.status import document

log = logging.getLogger("specflowd.web")

DEFAULT_BIND, DEFAULT_PORT = "127.0.0.1", 8470
STATIC = {  # path -> (file in views/static/, content type); nothing else there is served
    "/": ("index.html", "text/html; charset=utf-8"),
    "/page.js": ("page.js", "text/javascript; charset=utf-8"),
    "/page.css": ("page.css", "text/css; charset=utf-8"),
}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
RING = 4096  # events kept for streams that reconnect (Last-Event-ID)
MAX_BEHIND = 8 << 20  # bytes a stream may have unsent before it is closed
MAX_STREAMS = 1000  # open event streams at once (each holds a thread of the server)
FEED_LIMIT = 200  # entries `/api/feed/<spec>` answers with
REQUEST_TIMEOUT_S = 30  # a request that has not arrived whole by then is dropped
# The projects are read this long after the first write heard, all at once: marks landing at full
# speed (one every ~10 ms) then cost one read and one write to each stream per few marks, not per
# mark, and the daemon that makes them keeps the machine. A change reaches the page this much later.
GATHER_S = 0.05
# The page is for people watching: under contention the daemon, which answers requests and commits
# marks, comes first, as it does before its agents.
NICE = 10
SHA = re.compile(r"[0-9a-f]{7,40}")


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def encode(data: Any) -> str:
    # ASCII only (ensure_ascii), so no byte of a string can end an event line or need a charset.
    return json.dumps(data, separators=(",", ":"))


def sse(event_id: str, name: str, data: str) -> bytes:
    return f"id: {event_id}\nevent: {name}\ndata: {data}\n\n".encode()


@dataclass
class _Stream:
    sock: socket.socket
    done: threading.Event = field(default_factory=threading.Event)
    out: bytearray = field(default_factory=bytearray)
    writing: bool = False  # registered for writability (some of `out` did not fit the socket)


class Hub:
    """Server-sent events to every open stream. The board's changes are published here, numbered;
    one thread (`run`) does every write, without blocking, so a slow reader slows no one."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self._lock = threading.Lock()
        self._boot = secrets.token_hex(4)  # event ids of an earlier server are not ours to resume
        self._seq = 0
        self._ring: deque[tuple[int, bytes]] = deque(maxlen=RING)
        self._snapshot = snapshot
        self._board: str | None = None  # the snapshot encoded, once asked for
        self._joining: list[_Stream] = []
        self._streams: dict[socket.socket, _Stream] = {}
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._closed = False

    # -- other threads ---------------------------------------------------------------------

    def publish(self, events: list[Event], snapshot: dict[str, Any]) -> None:
        """Number and send `events`; `snapshot` is the board with them applied."""
        if not events:
            return
        encoded = [(name, encode(data)) for name, data in events]  # once, for every stream
        with self._lock:
            chunks = []
            for name, data in encoded:
                self._seq += 1
                chunks.append(sse(f"{self._boot}-{self._seq}", name, data))
                self._ring.append((self._seq, chunks[-1]))
            joined = b"".join(chunks)
            for stream in [*self._streams.values(), *self._joining]:
                stream.out += joined
            self._snapshot, self._board = snapshot, None
        self._wake()

    def board(self) -> str:
        """The whole board as JSON, as of the last event."""
        with self._lock:
            return self._encoded_board()

    def _encoded_board(self) -> str:
        if self._board is None:
            self._board = encode(self._snapshot)
        return self._board

    def full(self) -> bool:
        with self._lock:
            return len(self._streams) + len(self._joining) >= MAX_STREAMS

    def attach(self, sock: socket.socket, last_id: str | None) -> threading.Event | None:
        """Stream events to `sock` (its response headers already sent) from after `last_id`; the
        returned event is set when the stream has ended. None when too many streams are open."""
        stream = _Stream(sock)
        with self._lock:
            if self._closed or len(self._streams) + len(self._joining) >= MAX_STREAMS:
                return None
            stream.out += b"retry: 2000\n\n" + self._catch_up(last_id)
            self._joining.append(stream)
        self._wake()
        return stream.done

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._wake()

    def _catch_up(self, last_id: str | None) -> bytes:
        """What a stream that saw `last_id` missed: the events since, while the ring has them,
        else the whole board."""
        boot, _, seq = (last_id or "").partition("-")
        if boot == self._boot and seq.isdigit() and int(seq) <= self._seq:
            missed = self._seq - int(seq)
            if missed == 0:
                return b""
            if missed <= len(self._ring):
                return b"".join(chunk for n, chunk in list(self._ring)[-missed:])
        data = f'{{"at":{encode(now_iso())},"board":{self._encoded_board()}}}'
        return sse(f"{self._boot}-{self._seq}", "snapshot", data)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"\0")

    # -- the hub's thread ------------------------------------------------------------------

    def run(self) -> None:
        while True:
            ready = self._selector.select()
            with self._lock:
                for key, mask in ready:
                    if key.fileobj == self._wake_r:
                        with contextlib.suppress(BlockingIOError):
                            os.read(self._wake_r, 4096)
                        continue
                    stream: _Stream = key.data
                    if mask & selectors.EVENT_READ and not self._still_open(stream):
                        self._drop(stream)
                if self._closed:
                    for stream in [*self._streams.values(), *self._joining]:
                        self._drop(stream)
                    self._joining.clear()
                    return
                for stream in self._joining:
                    stream.sock.setblocking(False)
                    self._streams[stream.sock] = stream
                    self._selector.register(stream.sock, selectors.EVENT_READ, stream)
                self._joining.clear()
                for stream in list(self._streams.values()):
                    if stream.out:
                        self._flush(stream)

    def _still_open(self, stream: _Stream) -> bool:
        """A stream's socket is readable: the browser closed it (or sent what no stream expects)."""
        try:
            return bool(stream.sock.recv(4096))
        except BlockingIOError:
            return True
        except OSError:
            return False

    def _flush(self, stream: _Stream) -> None:
        try:
            sent = stream.sock.send(stream.out)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._drop(stream)
            return
        del stream.out[:sent]
        if len(stream.out) > MAX_BEHIND:
            self._drop(stream)  # it reconnects, and is sent the board again
            return
        writing = bool(stream.out)
        if writing != stream.writing:
            stream.writing = writing
            mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if writing else 0)
            self._selector.modify(stream.sock, mask, stream)

    def _drop(self, stream: _Stream) -> None:
        if self._streams.pop(stream.sock, None) is not None:
            self._selector.unregister(stream.sock)
        stream.done.set()  # the server's thread ends the response and closes the socket


def watch(board: Board, hub: Hub, waker: Waker) -> None:
    """The watcher thread: sleep until something is written, then publish what changed. A write
    during a scan wakes it again at once, so no change is missed."""
    while True:
        waker.wait(None)
        time.sleep(GATHER_S)
        waker.wait(0)  # what was written meanwhile is read by this scan
        try:
            events = board.scan()
        except Exception:  # noqa: BLE001 - the page goes on; the next write scans again
            log.exception("reading the projects failed")
            continue
        hub.publish(events, board.snapshot())


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily, board: Board, hub: Hub,
                 hosts: set[str]) -> None:
        self.address_family = family
        super().__init__(address, Handler)
        self.board = board
        self.hub = hub
        self.hosts = hosts
        self.static = {path: (resources.files("specflowd.views").joinpath("static", name).read_bytes(), kind)
                       for path, (name, kind) in STATIC.items()}


class Handler(BaseHTTPRequestHandler):
    server: Server
    server_version = "specflowd-web"
    sys_version = ""
    timeout = REQUEST_TIMEOUT_S

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_HEAD(self) -> None:
        self.do_GET(head=True)

    def do_GET(self, head: bool = False) -> None:  # noqa: N802 - http.server's name
        if not self._host_allowed():
            self._json(HTTPStatus.MISDIRECTED_REQUEST, {"error": "this server answers only to this machine's "
                                                                 "names (localhost, 127.0.0.1, ...)"}, head)
            return
        url = urlsplit(self.path)
        path = url.path
        query = parse_qs(url.query)
        if path in self.server.static:
            body, kind = self.server.static[path]
            self._send(HTTPStatus.OK, body, kind, head)
            return
        if path == "/favicon.ico":  # browsers ask; the page has none
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon", head=True)
            return
        if path == "/events" and not head:
            self._events()
            return
        route = self._route(path)
        if route is None:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {path}"}, head)
            return
        try:
            status, data = route(query)
        except UserError as e:
            status, data = HTTPStatus.NOT_FOUND, {"error": e.message}
        self._json(status, data, head)

    def _refuse(self) -> None:
        self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
        self.send_header("Allow", "GET, HEAD")
        body = b'{"error": "read only: GET and HEAD only"}\n'
        self._headers("application/json", len(body))
        self.wfile.write(body)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_TRACE = do_CONNECT = _refuse  # noqa: N815

    # -- routes -----------------------------------------------------------------------------

    def _route(self, path: str) -> Callable[[dict[str, list[str]]], tuple[HTTPStatus, Any]] | None:
        """What answers `path`: a function of the query."""
        if path == "/api/overview":
            return self._overview
        if path == "/api/fleet":
            return self._fleet
        routes: dict[str, Callable[[str, dict[str, list[str]]], tuple[HTTPStatus, Any]]] = {
            "/api/orchestrations/": self._orchestration, "/api/feed/": self._feed, "/api/commits/": self._commit}
        for prefix, answer in routes.items():
            if path.startswith(prefix):
                return functools.partial(answer, unquote(path[len(prefix):]))
        return None

    def _overview(self, query: dict[str, list[str]]) -> tuple[HTTPStatus, Any]:
        return HTTPStatus.OK, {"at": now_iso(), "board": json.loads(self.server.hub.board())}

    def _fleet(self, query: dict[str, list[str]]) -> tuple[HTTPStatus, Any]:
        return HTTPStatus.OK, gather(self.server.board.projects, datetime.now(UTC))[0]

    def _orchestration(self, oid: str, query: dict[str, list[str]]) -> tuple[HTTPStatus, Any]:
        try:
            ids.check_orchestration_id(oid)
        except ValueError as e:
            return HTTPStatus.BAD_REQUEST, {"error": str(e)}
        for project in self.server.board.projects:
            try:
                state = statefile.read(project, project.state_file(oid))
            except (OSError, ValueError):
                continue
            return HTTPStatus.OK, document(state, datetime.now(UTC), self.server.board.titles(project, state.spec))
        return HTTPStatus.NOT_FOUND, {"error": f"no orchestration {oid} has a state file in the served projects"}

    def _feed(self, spec: str, query: dict[str, list[str]]) -> tuple[HTTPStatus, Any]:
        try:
            ids.check_spec_id(spec)
        except ValueError as e:
            return HTTPStatus.BAD_REQUEST, {"error": str(e)}
        project = self._project(query)
        if project is None:
            return HTTPStatus.NOT_FOUND, {"error": "no such served project (name it with ?project=ROOT)"}
        if git.read_ref(project.common_dir, project.branch_ref) is None:
            return HTTPStatus.OK, []
        return HTTPStatus.OK, feed.read(project, spec=spec, limit=FEED_LIMIT)

    def _commit(self, sha: str, query: dict[str, list[str]]) -> tuple[HTTPStatus, Any]:
        if not SHA.fullmatch(sha):
            return HTTPStatus.BAD_REQUEST, {"error": f"not a commit id: {sha!r} (7 to 40 lowercase hex characters)"}
        project = self._project(query)
        if project is None:
            return HTTPStatus.NOT_FOUND, {"error": "no such served project (name it with ?project=ROOT)"}
        full = git.resolve_commit(project.root, sha)
        if full is None:
            return HTTPStatus.NOT_FOUND, {"error": f"no commit {sha} in {project.root}"}
        fields = git.log(project.root, full, "%H%x1f%an%x1f%aI%x1f%B", limit=1).split("\x1f", 3)
        return HTTPStatus.OK, {
            "commit": fields[0], "author": fields[1], "time": fields[2], "message": fields[3].rstrip("\n"),
            "files": [{"path": path, "added": added, "deleted": deleted}
                      for added, deleted, path in git.commit_numstat(project.root, full)],
        }

    def _project(self, query: dict[str, list[str]]) -> Project | None:
        roots = query.get("project")
        return self.server.board.find(roots[0] if roots else None)

    # -- the event stream -------------------------------------------------------------------

    def _events(self) -> None:
        if self.server.hub.full():
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"{MAX_STREAMS} event streams are open already"},
                       head=False)
            return
        self.send_response(HTTPStatus.OK)
        self._headers("text/event-stream; charset=utf-8", None)
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        done = self.server.hub.attach(self.connection, self.headers.get("Last-Event-ID"))
        if done is None:
            return
        done.wait()

    # -- answering ---------------------------------------------------------------------------

    def _host_allowed(self) -> bool:
        host = self.headers.get("Host")
        if host is None:
            return True  # HTTP/1.0 without Host: no browser sends such a request
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return name.strip("[]").lower() in self.server.hosts

    def _json(self, status: HTTPStatus, data: Any, head: bool) -> None:
        self._send(status, json.dumps(data, indent=2).encode() + b"\n", "application/json", head)

    def _send(self, status: HTTPStatus, body: bytes, kind: str, head: bool) -> None:
        self.send_response(status)
        self._headers(kind, len(body))
        if not head:
            self.wfile.write(body)

    def _headers(self, kind: str, length: int | None) -> None:
        self.send_header("Content-Type", kind)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()


def allowed_hosts(bind: str) -> set[str]:
    """The names a request's Host may give: loopback's, the bound address, this machine's names."""
    hosts = {"localhost", "127.0.0.1", "::1", bind.lower(), socket.gethostname().lower()}
    with contextlib.suppress(OSError):
        hosts.add(socket.getfqdn().lower())
    return hosts


def is_loopback(bind: str) -> bool:
    try:
        infos = socket.getaddrinfo(bind, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False
    return all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def open_server(board: Board, bind: str, port: int) -> Server:
    """The server bound to `bind`:`port` (0: any free port), with its hub's and watcher's threads,
    all NICE steps below where it was started (a thread's nice value is its own: set before any)."""
    with contextlib.suppress(OSError):
        os.nice(NICE)
    try:
        family, _, _, _, address = socket.getaddrinfo(bind, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise UserError(f"cannot bind to {bind!r}: {e.strerror}", exit_code=2) from None
    # Watching starts before the first read: whatever is written after it wakes the watcher.
    waker = Waker(*board.folders(), events=REPLACED).__enter__()
    try:
        board.scan()
        hub = Hub(board.snapshot())
        try:
            server = Server((str(address[0]), port), family, board, hub, allowed_hosts(bind))
        except OSError as e:
            raise UserError(f"cannot listen on {bind} port {port}: {e.strerror}") from None
    except BaseException:
        waker.__exit__(None, None, None)
        raise
    threading.Thread(target=hub.run, name="web-hub", daemon=True).start()
    threading.Thread(target=watch, args=(board, hub, waker), name="web-watch", daemon=True).start()
    return server


def url_of(server: Server) -> str:
    host, port = str(server.server_address[0]), server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve(server: Server) -> None:
    """Answer until interrupted; then close every stream."""
    try:
        # No poll interval: the loop would wake twice a second to look for a shutdown() nobody
        # calls; a signal ends it (SIGINT, and SIGTERM as the command sets it up).
        server.serve_forever(poll_interval=None)  # type: ignore[arg-type]
    finally:
        server.hub.close()
        server.server_close()
