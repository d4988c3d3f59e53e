"""The scripted model server the real agent CLIs talk to in the tests: loopback only, standard library.

It speaks the three wire protocols the CLIs use, streaming: Anthropic Messages (`POST /v1/messages`,
SSE) for Claude Code, OpenAI Responses (`POST /v1/responses`, SSE) for Codex, and the Gemini API
(`:generateContent`, `:streamGenerateContent?alt=sse`, `:countTokens`) for Gemini CLI. Each request
is turned into one neutral conversation (`Turn`s), the scripted agent (`decide`) picks the next
move, and the move is written back in the request's own protocol.

The scripted agent does what the implement prompt asks, with real tool calls: for each task it is
given (read from the prompt's task lines, `(mark: specflowd mark ID --done)`), it writes a file,
`git add`s and commits it with the `Specflow-Task:` trailer and runs `specflowd mark` (three tool
calls), then ends with a final message. Its progress is read from the conversation itself (the tool calls made since the
latest prompt), so a resumed or forked session goes on where the history says.

Faults are played on demand (`Fault`): an overload (HTTP 529 / 503), a usage limit with a reset
time, usage reported so large that a budget is overrun, a hang, an error in the middle of a stream,
or an agent that stops early. Every request is logged (`Logged`), so tests can assert on what the
CLI sent: the model, the tools it offered, the history of a resumed session.

The server is also every CLI's HTTPS proxy: a CLI that tries any other address reaches it with a
`CONNECT`, which is refused at once and logged as stray traffic (`stray`), so nothing hangs and
nothing leaves the machine.
"""

from __future__ import annotations

import json
import re
import shlex
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A task line of specflowd's prompts: `- [ ] T001 Title (mark: specflowd mark T001 --done)`.
TASK_LINE = re.compile(r"^- \[[ ~]\] .*\(mark: specflowd mark (.+?) --done\)\s*$", re.M)
# Where each CLI says the agent works: Claude's environment section, Codex's <cwd>, Gemini's workspace list.
CWD = re.compile(r"(?:Primary working directory: |<cwd>|Workspace Directories:\**\s*- )([^\s<]+)")
STEPS = ("write", "commit", "mark")  # what the agent does for each task, one tool call each
FOLDER = "specflow-real"
OUTPUT_TOKENS = 40  # reported for every answer
REFUSING = frozenset({"hang", "overload", "http_400", "usage_limit", "error_mid"})  # no usage is reported


@dataclass
class Fault:
    """Something to play instead of the agent's next move.

    `at`: a task id (fires when the agent is about to start that task) or "*" (any request of an
    agent run). `during`: only in runs whose prompt is of this kind (implement, followup, heal).
    `api`: only for requests of this protocol (anthropic, responses, gemini): one server serves
    several CLIs at once.
    `times`: how many requests it fires for. Kinds: overload, usage_limit (`reset_in_s`), error_mid
    (the stream breaks after it began), http_400, hang, stop (the agent ends its turn, its tasks
    left), expensive (the move is played, reporting `tokens` of input)."""

    kind: str
    at: str = "*"
    during: str | None = None
    api: str | None = None
    times: int = 1
    reset_in_s: int = 3
    tokens: int = 2_000_000
    fired: int = 0


@dataclass
class Logged:
    api: str
    path: str
    model: str
    prompt_kind: str
    tools: list[str]
    turns: int
    calls_since_prompt: int
    prompt: str
    fault: str | None = None
    session: str | None = None
    last_result: str = ""  # what the CLI said its last tool call gave
    history: int = 0  # turns before the prompt: the earlier conversation of a resumed or forked session
    usage: tuple[int, int] = (0, 0)  # input and output tokens reported for this request
    at: float = field(default_factory=time.time)


@dataclass
class Turn:
    """One item of a conversation, whatever the protocol: a user's text, a tool call, its result."""

    role: str  # "user" | "call" | "result" | "assistant"
    text: str = ""


@dataclass
class Move:
    """The agent's next move: a tool call (`tool` "write" or "shell") or the final answer."""

    tool: str | None = None
    path: str = ""
    content: str = ""
    command: str = ""
    text: str = ""
    task: str | None = None


@dataclass
class Conversation:
    turns: list[Turn]
    model: str
    tools: list[str]
    cwd: str | None
    session: str | None = None


def prompt_kind(text: str) -> str:
    if "You are healing" in text:
        return "heal"
    if "are not marked done yet" in text:
        return "followup"
    if "You are implementing" in text:
        return "implement"
    return "other"


def latest_prompt(conv: Conversation) -> tuple[int, str]:
    """The index and text of the latest specflowd prompt (a user turn with task lines, or one that
    names itself); -1 when the conversation holds none (a CLI's side request)."""
    for i in range(len(conv.turns) - 1, -1, -1):
        turn = conv.turns[i]
        if turn.role == "user" and (TASK_LINE.search(turn.text) or prompt_kind(turn.text) != "other"):
            return i, turn.text
    return -1, ""


def tasks_of(prompt: str) -> list[str]:
    return [shlex.split(m.group(1))[0] for m in TASK_LINE.finditer(prompt)]


def plan(tasks: list[str], calls: int) -> tuple[str | None, str | None]:
    """(task, step) of the move after `calls` tool calls; (None, None) when all is done."""
    index, step = divmod(calls, len(STEPS))
    if index >= len(tasks):
        return None, None
    return tasks[index], STEPS[step]


def move_for(task: str, step: str) -> Move:
    name = task.lstrip("#").replace(".", "-")
    path = f"{FOLDER}/task-{name}.md"
    quoted = shlex.quote(task)
    if step == "write":
        return Move(tool="write", path=path, content=f"# {task}\n\nDone by the scripted agent.\n", task=task)
    if step == "commit":
        return Move(tool="shell", command=f"git add -- {path} && git commit -q -m {shlex.quote(f'{task}: scripted work')} "
                                          f"-m {shlex.quote(f'Specflow-Task: {task}')}", task=task)
    return Move(tool="shell", command=f"specflowd mark {quoted} --done", task=task)


class Script:
    """What the scripted agent does; tests add faults, the server consumes them."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.lock = threading.Lock()

    def add(self, *faults: Fault) -> None:
        with self.lock:
            self.faults.extend(faults)

    def take(self, task: str | None, kind: str, api: str) -> Fault | None:
        """The first fault that fires for this request (and count it)."""
        with self.lock:
            for f in self.faults:
                if f.fired >= f.times or (f.during and f.during != kind) or (f.api and f.api != api):
                    continue
                if f.at == "*" or f.at == task:
                    f.fired += 1
                    return f
        return None


def decide(conv: Conversation, script: Script, api: str) -> tuple[Move, Fault | None, str, int]:
    """The agent's next move for this conversation, the fault to play (if any), the prompt's kind and
    how many tool calls were made since the prompt."""
    index, prompt = latest_prompt(conv)
    if index < 0:
        return Move(text="OK."), None, "other", 0
    kind = prompt_kind(prompt)
    calls = sum(1 for t in conv.turns[index + 1:] if t.role == "call")
    tasks = tasks_of(prompt)
    task, step = plan(tasks, calls)
    fault = script.take(task if step == "write" else None, kind, api) if kind != "other" else None
    if fault is not None and fault.kind == "stop":
        done = tasks[:calls // len(STEPS)]
        return Move(text=f"I stopped after {', '.join(done) or 'nothing'}."), fault, kind, calls
    if task is None or step is None:
        return Move(text=f"Completed {', '.join(tasks) or 'the request'}."), fault, kind, calls
    return move_for(task, step), fault, kind, calls


def _join(*parts: str) -> str:
    return "\n".join(p for p in parts if p)


# ---- the three protocols: request -> Conversation ----------------------------------------------

def _anthropic_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return _join(*(b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text"))


def anthropic_conversation(body: dict[str, Any], headers: dict[str, str]) -> Conversation:
    turns: list[Turn] = []
    for msg in body.get("messages", []):
        content = msg.get("content")
        if msg.get("role") == "user":
            blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
            for b in blocks:
                if b.get("type") == "tool_result":
                    turns.append(Turn("result", _anthropic_text(b.get("content"))))
            text = _anthropic_text([b for b in blocks if b.get("type") == "text"])
            if text:
                turns.append(Turn("user", text))
        elif msg.get("role") == "assistant":
            for b in content if isinstance(content, list) else []:
                if b.get("type") == "tool_use":
                    turns.append(Turn("call", json.dumps(b.get("input"))))
                elif b.get("type") == "text":
                    turns.append(Turn("assistant", b.get("text", "")))
    system = body.get("system")
    everything = _anthropic_text(system) + json.dumps(body.get("messages", []))
    m = CWD.search(everything.replace("\\n", "\n"))
    return Conversation(turns, body.get("model", ""), [t.get("name", "") for t in body.get("tools", [])],
                        m.group(1) if m else None, headers.get("x-claude-code-session-id"))


def responses_conversation(body: dict[str, Any], headers: dict[str, str]) -> Conversation:
    turns: list[Turn] = []
    items = body.get("input", [])
    for item in items if isinstance(items, list) else [{"type": "message", "role": "user", "content": items}]:
        kind = item.get("type", "message")
        if kind == "message":
            content = item.get("content")
            text = content if isinstance(content, str) else _join(
                *(c.get("text", "") for c in content or [] if isinstance(c, dict)))
            turns.append(Turn("user" if item.get("role") in ("user", "developer") else "assistant", text))
        elif kind in ("function_call", "custom_tool_call", "local_shell_call"):
            turns.append(Turn("call", str(item.get("arguments") or item.get("input") or item.get("action"))))
        elif kind in ("function_call_output", "custom_tool_call_output", "local_shell_call_output"):
            out = item.get("output")
            turns.append(Turn("result", out if isinstance(out, str) else json.dumps(out)))
    instructions = body.get("instructions") or ""
    m = CWD.search(instructions + json.dumps(items))
    tools = [t.get("name") or t.get("type", "") for t in body.get("tools", [])]
    return Conversation(turns, body.get("model", ""), tools, m.group(1) if m else None,
                        headers.get("session_id") or headers.get("session-id"))


def gemini_conversation(body: dict[str, Any], model: str) -> Conversation:
    turns: list[Turn] = []
    for content in body.get("contents", []):
        for part in content.get("parts", []):
            if "functionCall" in part:
                turns.append(Turn("call", json.dumps(part["functionCall"].get("args"))))
            elif "functionResponse" in part:
                turns.append(Turn("result", json.dumps(part["functionResponse"].get("response"))))
            elif "text" in part and not part.get("thought"):
                turns.append(Turn("user" if content.get("role") == "user" else "assistant", part["text"]))
    system = body.get("systemInstruction") or body.get("system_instruction") or {}
    sys_text = _join(*(p.get("text", "") for p in system.get("parts", []))) if isinstance(system, dict) else ""
    m = CWD.search(sys_text + json.dumps(body.get("contents", [])).replace("\\n", "\n"))
    tools = [d.get("name", "") for t in body.get("tools", []) for d in t.get("functionDeclarations", [])]
    return Conversation(turns, model, tools, m.group(1) if m else None)


# ---- the server --------------------------------------------------------------------------------

def _usage_tokens(body: bytes) -> int:
    return max(1, len(body) // 4)


def _sse(event: str | None, data: dict[str, Any]) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


class ModelServer:
    """The server, on 127.0.0.1 and a free port, in a thread of its own."""

    def __init__(self) -> None:
        self.script = Script()
        self.log: list[Logged] = []
        self.stray: list[str] = []  # CONNECTs and requests for anything but the model APIs
        self._release = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(_Handler):
            owner = server

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="model-server", daemon=True)

    def start(self) -> ModelServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def release_hangs(self) -> None:
        self._release.set()

    def reset(self) -> None:
        """Forget the faults and the log (one server serves a whole test session)."""
        with self._lock:
            self.script = Script()
            self.log.clear()
            self.stray.clear()
            self._release = threading.Event()

    def record(self, entry: Logged) -> None:
        with self._lock:
            self.log.append(entry)


class _Handler(BaseHTTPRequestHandler):
    owner: ModelServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the log is `owner.log`
        pass

    # -- plumbing --

    def _body(self) -> bytes:
        n = int(self.headers.get("content-length") or 0)
        return self.rfile.read(n) if n else b""

    def _json(self, status: int, data: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def _stream(self, chunks: list[bytes], *, cut: bool = False) -> None:
        """An SSE response, closed at its end (or `cut` short in the middle: an error mid-stream)."""
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        for chunk in chunks[: max(1, len(chunks) // 2)] if cut else chunks:
            self.wfile.write(chunk)
            self.wfile.flush()
        self.close_connection = True

    def _hang(self) -> None:
        self.owner._release.wait(300)
        self.close_connection = True

    def _stray(self) -> None:
        self.owner.stray.append(f"{self.command} {self.path}")
        self._json(403, {"error": {"message": "the test's model server only answers the model APIs"}})

    do_CONNECT = _stray
    do_PUT = _stray
    do_DELETE = _stray

    def do_GET(self) -> None:
        if self.path.startswith("/v1/models") or self.path.startswith("/v1beta/models"):
            self._json(200, {"models": [], "data": [], "object": "list"})
            return
        self._stray()

    def do_POST(self) -> None:
        raw = self._body()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = self.path.split("?", 1)[0]
        if path == "/v1/messages":
            self._anthropic(body, headers, raw)
        elif path == "/v1/messages/count_tokens":
            self._json(200, {"input_tokens": _usage_tokens(raw)})
        elif path == "/v1/responses":
            self._responses(body, headers, raw)
        elif m := re.fullmatch(r"/v1(?:beta|alpha)?/models/([^/:]+):(\w+)", path):
            self._gemini(m.group(1), m.group(2), body, raw)
        else:
            self._stray()

    def _decide(self, api: str, conv: Conversation, raw: bytes) -> tuple[Move, Fault | None, int]:
        """The move, the fault to play and the input tokens to report; the request is logged."""
        move, fault, kind, calls = decide(conv, self.owner.script, api)
        index, prompt = latest_prompt(conv)
        refused = fault is not None and fault.kind in REFUSING
        tokens = fault.tokens if fault and fault.kind == "expensive" else _usage_tokens(raw)
        self.owner.record(Logged(api=api, path=self.path, model=conv.model, prompt_kind=kind, tools=conv.tools,
                                 turns=len(conv.turns), calls_since_prompt=calls, prompt=prompt,
                                 fault=fault.kind if fault else None, session=conv.session,
                                 last_result=next((t.text for t in reversed(conv.turns) if t.role == "result"), ""),
                                 history=max(0, index), usage=(0, 0) if refused else (tokens, OUTPUT_TOKENS)))
        return move, fault, tokens

    def _refuse(self, api: str, fault: Fault) -> bool:
        """Play a fault that replaces the response; False when the move is to be played after all."""
        reset = int(time.time()) + fault.reset_in_s
        if fault.kind == "hang":
            self._hang()
        elif fault.kind == "overload":
            if api == "anthropic":
                self._json(529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
            else:
                self._json(503, {"error": {"code": 503, "message": "The model is overloaded.",
                                           "status": "UNAVAILABLE"}})
        elif fault.kind == "http_400":
            # Not to be retried (Anthropic's SDK honours x-should-retry): the run fails now.
            self._json(400, {"type": "error", "error": {"type": "invalid_request_error", "code": 400,
                                                       "message": "scripted failure: bad request",
                                                       "status": "INVALID_ARGUMENT"}}, {"x-should-retry": "false"})
        elif fault.kind == "usage_limit":
            self._usage_limit(api, reset, fault.reset_in_s)
        else:
            return False
        return True

    def _usage_limit(self, api: str, reset: int, seconds: int) -> None:
        if api == "anthropic":
            self._json(429, {"type": "error", "error": {
                "type": "rate_limit_error", "message": f"usage limit reached, resets at {reset}"}}, {
                "anthropic-ratelimit-unified-status": "rejected", "anthropic-ratelimit-unified-reset": str(reset),
                "retry-after": str(seconds), "x-should-retry": "false"})
        elif api == "responses":
            self._json(429, {"error": {"type": "usage_limit_reached", "message": "You've hit your usage limit.",
                                       "plan_type": "plus", "resets_at": reset, "resets_in_seconds": seconds}})
        else:
            # A retry delay over Gemini CLI's five minutes makes its quota error terminal (not retried).
            self._json(429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                                       "message": f"Quota exceeded: usage limit reached, resets at {reset}",
                                       "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                                    "retryDelay": "3600s"}]}})

    # -- Anthropic Messages --

    def _anthropic(self, body: dict[str, Any], headers: dict[str, str], raw: bytes) -> None:
        conv = anthropic_conversation(body, headers)
        fault = None
        if any(t.role == "user" and TASK_LINE.search(t.text) for t in conv.turns):
            move, fault, tokens = self._decide("anthropic", conv, raw)
            if fault is not None and self._refuse("anthropic", fault):
                return
        else:  # a side request (a title, a summary): answered plainly
            move, tokens = Move(text="OK."), _usage_tokens(raw)
            self.owner.record(Logged(api="anthropic", path=self.path, model=conv.model, prompt_kind="other",
                                     tools=conv.tools, turns=len(conv.turns), calls_since_prompt=0, prompt=""))
        model = body.get("model", "claude")
        usage = {"input_tokens": tokens, "output_tokens": OUTPUT_TOKENS, "cache_creation_input_tokens": 0,
                 "cache_read_input_tokens": 0}
        if move.tool is None:
            block: dict[str, Any] = {"type": "text", "text": move.text}
            stop = "end_turn"
        else:
            name, args = self._anthropic_tool(move, conv.cwd)
            block = {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:20]}", "name": name, "input": args}
            stop = "tool_use"
        message = {"id": f"msg_{uuid.uuid4().hex[:20]}", "type": "message", "role": "assistant", "model": model,
                   "content": [block], "stop_reason": stop, "stop_sequence": None, "usage": usage}
        if not body.get("stream"):
            self._json(200, message)
            return
        if block["type"] == "text":
            start, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": move.text}
        else:
            start = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        chunks = [
            _sse("message_start", {"type": "message_start", "message": {
                **message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}}),
            _sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": start}),
            _sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
            _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
            _sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                   "usage": {"output_tokens": OUTPUT_TOKENS}}),
            _sse("message_stop", {"type": "message_stop"}),
        ]
        if fault is not None and fault.kind == "error_mid":
            chunks = chunks[:2] + [_sse("error", {"type": "error", "error": {
                "type": "api_error", "message": "scripted failure in the middle of the stream"}})]
        self._stream(chunks)

    @staticmethod
    def _anthropic_tool(move: Move, cwd: str | None) -> tuple[str, dict[str, Any]]:
        if move.tool == "write" and cwd:
            return "Write", {"file_path": f"{cwd.rstrip('/')}/{move.path}", "content": move.content}
        command = move.command or _write_command(move)
        return "Bash", {"command": command, "description": f"work on {move.task}"}

    # -- OpenAI Responses --

    def _responses(self, body: dict[str, Any], headers: dict[str, str], raw: bytes) -> None:
        conv = responses_conversation(body, headers)
        move, fault, tokens = self._decide("responses", conv, raw)
        if fault is not None and self._refuse("responses", fault):
            return
        resp_id = f"resp_{uuid.uuid4().hex[:20]}"
        if move.tool is None:
            item: dict[str, Any] = {"type": "message", "role": "assistant", "id": f"msg_{uuid.uuid4().hex[:16]}",
                                    "status": "completed",
                                    "content": [{"type": "output_text", "text": move.text, "annotations": []}]}
        else:
            item = {"type": "function_call", "id": f"fc_{uuid.uuid4().hex[:16]}", "status": "completed",
                    "call_id": f"call_{uuid.uuid4().hex[:16]}", **self._responses_tool(move, conv.tools)}
        response = {"id": resp_id, "object": "response", "created_at": int(time.time()), "status": "completed",
                    "model": body.get("model", ""), "output": [item],
                    "usage": {"input_tokens": tokens, "input_tokens_details": {"cached_tokens": 0},
                              "output_tokens": OUTPUT_TOKENS, "output_tokens_details": {"reasoning_tokens": 0},
                              "total_tokens": tokens + OUTPUT_TOKENS}}
        chunks = [
            _sse("response.created", {"type": "response.created", "response": {**response, "status": "in_progress",
                                                                               "output": []}}),
            _sse("response.output_item.added", {"type": "response.output_item.added", "output_index": 0,
                                                "item": item}),
            _sse("response.output_item.done", {"type": "response.output_item.done", "output_index": 0,
                                               "item": item}),
            _sse("response.completed", {"type": "response.completed", "response": response}),
        ]
        if fault is not None and fault.kind == "error_mid":
            chunks = chunks[:1] + [_sse("response.failed", {"type": "response.failed", "response": {
                **response, "status": "failed", "output": [],
                "error": {"code": "server_error", "message": "scripted failure in the middle of the stream"}}})]
        self._stream(chunks)

    @staticmethod
    def _responses_tool(move: Move, tools: list[str]) -> dict[str, Any]:
        command = move.command or _write_command(move)
        if "exec_command" in tools:
            return {"name": "exec_command", "arguments": json.dumps({"cmd": command})}
        return {"name": "shell", "arguments": json.dumps({"command": ["bash", "-lc", command]})}

    # -- Gemini --

    def _gemini(self, model: str, method: str, body: dict[str, Any], raw: bytes) -> None:
        if method == "countTokens":
            self._json(200, {"totalTokens": _usage_tokens(raw)})
            return
        conv = gemini_conversation(body, model)
        if not any(t.role == "user" and TASK_LINE.search(t.text) for t in conv.turns) or not conv.tools:
            # The CLI's routing or summary calls: a JSON answer serves the router, plain text the rest.
            self.owner.record(Logged(api="gemini", path=self.path, model=model, prompt_kind="other",
                                     tools=conv.tools, turns=len(conv.turns), calls_since_prompt=0, prompt=""))
            text = json.dumps({"reasoning": "scripted", "model_choice": "flash",
                               "complexity_reasoning": "scripted", "complexity_score": 10})
            self._gemini_reply(method, [{"text": text}], _usage_tokens(raw), model)
            return
        move, fault, tokens = self._decide("gemini", conv, raw)
        if fault is not None and self._refuse("gemini", fault):
            return
        if move.tool is None:
            parts: list[dict[str, Any]] = [{"text": move.text}]
        elif move.tool == "write" and conv.cwd and "write_file" in conv.tools:
            parts = [{"functionCall": {"name": "write_file", "args": {
                "file_path": f"{conv.cwd.rstrip('/')}/{move.path}", "content": move.content}}}]
        else:
            parts = [{"functionCall": {"name": "run_shell_command", "args": {
                "command": move.command or _write_command(move), "description": f"work on {move.task}"}}}]
        self._gemini_reply(method, parts, tokens, model, cut=fault is not None and fault.kind == "error_mid")

    def _gemini_reply(self, method: str, parts: list[dict[str, Any]], tokens: int, model: str,
                      cut: bool = False) -> None:
        data = {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": tokens, "candidatesTokenCount": OUTPUT_TOKENS,
                                  "totalTokenCount": tokens + OUTPUT_TOKENS},
                "modelVersion": model}
        if method == "generateContent":
            self._json(200, data)
            return
        if cut:
            self._stream([_sse(None, {"error": {"code": 500, "status": "INTERNAL",
                                                "message": "scripted failure in the middle of the stream"}})])
            return
        self._stream([_sse(None, data)])


def _write_command(move: Move) -> str:
    return f"mkdir -p {FOLDER} && printf '%s' {shlex.quote(move.content)} > {shlex.quote(move.path)}"
