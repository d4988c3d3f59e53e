"""The request protocol (SPEC §5): request and response models, and turning a request file's bytes and
metadata into a validated request or the error it is answered with. Pure: no I/O here."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from specflowd.core import ids, records
from specflowd.core.config import BudgetConfig, OrchestrationConfig
from specflowd.core.state import OrchestrationState
from specflowd.core.vocab import ErrorCode, RecoverChoice, RequestAction, TaskStatus

MAX_BYTES = 64 * 1024

SpecId = Annotated[str, AfterValidator(ids.check_spec_id)]
OrchestrationId = Annotated[str, AfterValidator(ids.check_orchestration_id)]
RequestId = Annotated[str, AfterValidator(ids.check_request_id)]
TaskRef = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\s]+$")]
CommitId = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{4,64}$")]


def _keys_of(section: type) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Keys of a config section a request sets, checked as the section types them; only these
    override the project's config. (The sections are records, for the fast commands' sake.)"""
    return lambda data: records.given(section, data)


OrchestrationKeys = Annotated[dict[str, Any], AfterValidator(_keys_of(OrchestrationConfig)),
                              WithJsonSchema(TypeAdapter(OrchestrationConfig).json_schema())]
BudgetKeys = Annotated[dict[str, Any], AfterValidator(_keys_of(BudgetConfig)),
                       WithJsonSchema(TypeAdapter(BudgetConfig).json_schema())]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: RequestId | None = None


class StartRequest(_Request):
    action: Literal[RequestAction.START]
    spec: SpecId
    config: OrchestrationKeys = Field(default_factory=dict)
    budget: BudgetKeys = Field(default_factory=dict)


class OrchestrationRequest(_Request):
    action: Literal[RequestAction.PAUSE, RequestAction.RESUME, RequestAction.CANCEL, RequestAction.MERGE]
    orchestration: OrchestrationId


class RecoverRequest(_Request):
    action: Literal[RequestAction.RECOVER]
    orchestration: OrchestrationId
    choice: RecoverChoice
    budget: BudgetKeys = Field(default_factory=dict)  # budgets raised for what comes next


class MarkRequest(_Request):
    action: Literal[RequestAction.MARK]
    spec: SpecId | None = None
    task: TaskRef | None = None
    tasks: list[TaskRef] | None = Field(None, min_length=1, max_length=1000)
    status: TaskStatus
    reason: Annotated[str, Field(max_length=500)] | None = None
    evidence: CommitId | None = None

    @model_validator(mode="after")
    def _one_way_to_name_tasks(self) -> MarkRequest:
        if (self.task is None) == (self.tasks is None):
            raise ValueError("give either `task` or `tasks`")
        if self.reason is not None and self.status != TaskStatus.BLOCKED:
            raise ValueError("`reason` goes with status blocked only")
        return self

    @property
    def task_ids(self) -> list[str]:
        return [self.task] if self.task is not None else list(self.tasks or ())


Request = Annotated[StartRequest | OrchestrationRequest | RecoverRequest | MarkRequest,
                    Field(discriminator="action")]
SUBFOLDERS = frozenset({"tmp", "done", "failed"})
ACTIONS = tuple(RequestAction)


class ErrorBody(BaseModel):
    code: ErrorCode
    message: str
    field: str | None = None


class OkResponse(BaseModel):
    id: str
    ok: Literal[True] = True
    action: str
    result: dict[str, Any]
    at: datetime


class ErrorResponse(BaseModel):
    id: str
    ok: Literal[False] = False
    error: ErrorBody
    at: datetime


Response = Annotated[OkResponse | ErrorResponse, Field(discriminator="ok")]


@dataclass(frozen=True)
class FileFacts:
    """What the inbox learnt about a request file before reading it."""

    name: str
    regular: bool  # a regular file, not a symlink, folder, FIFO or device
    uid: int
    size: int


def is_request_name(name: str) -> bool:
    """Whether a name in requests/ may be a request: hidden files and `*.tmp` are files being written."""
    return bool(name) and not name.startswith(".") and not name.endswith(".tmp") and name not in SUBFOLDERS


def stem(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name[1:] else name


def request_digest(raw: bytes | None) -> str | None:
    """What tells two requests with one id apart: the digest of their bytes (None: not read)."""
    return None if raw is None else hashlib.sha256(raw).hexdigest()


def fallback_id(name: str) -> str:
    """The answer's name when the request gives none: the file name without extension, made safe."""
    base = stem(name)
    try:
        return ids.check_request_id(base)
    except ValueError:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", base).replace("..", "_").lstrip("._-")[:100]
        digest = hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
        return f"{safe or 'request'}-{digest}"


def parse_request(raw: bytes | None, facts: FileFacts, uid: int) -> tuple[str, Request | ErrorBody]:
    """The answer id, and the validated request or the ErrorBody it is refused with.
    `raw` is None when the file was not read (not regular, too large)."""
    rid = fallback_id(facts.name)
    if not facts.regular:
        return rid, ErrorBody(code=ErrorCode.NOT_REGULAR_FILE,
                              message=f"{facts.name} is not a regular file (a symlink, folder or device); "
                              "write requests as plain files")
    if facts.uid != uid:
        return rid, ErrorBody(code=ErrorCode.WRONG_OWNER, message=f"{facts.name} is owned by uid {facts.uid}, not by the "
                              f"daemon's user (uid {uid}); only that user's requests are read")
    if raw is None or len(raw) > MAX_BYTES:
        return rid, ErrorBody(code=ErrorCode.TOO_LARGE, message=f"{facts.name} is {facts.size} bytes; a request may be "
                              f"at most {MAX_BYTES} bytes")
    is_toml = facts.name.endswith(".toml")
    data, problem = _decode(raw, is_toml)
    if problem is not None:
        return rid, ErrorBody(code=ErrorCode.INVALID_TOML if is_toml else "invalid_json",
                              message=f"{facts.name}: {problem}")
    if "id" in data:
        try:
            rid = ids.check_request_id(data["id"])
        except ValueError as e:
            return rid, ErrorBody(code=ErrorCode.INVALID_FIELD, message=str(e), field="id")
    action = data.get("action")
    if action is None:
        return rid, ErrorBody(code=ErrorCode.INVALID_FIELD, field="action",
                              message=f"no `action`: say what to do ({', '.join(ACTIONS)})")
    if action not in ACTIONS:
        return rid, ErrorBody(code=ErrorCode.UNKNOWN_ACTION, field="action",
                              message=f"unknown action {action!r}: expected one of {', '.join(ACTIONS)}")
    try:
        return rid, REQUEST.validate_python(data)
    except ValidationError as e:
        return rid, _field_error(e)


def _decode(raw: bytes, is_toml: bool) -> tuple[dict[str, Any], str | None]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return {}, f"not UTF-8 text (byte {e.start})"
    try:
        data = tomllib.loads(text) if is_toml else json.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as e:
        return {}, f"not valid {'TOML' if is_toml else 'JSON'}: {e}"
    except RecursionError:  # both parsers recurse: 64 KiB of brackets is deeper than Python goes
        return {}, f"not valid {'TOML' if is_toml else 'JSON'}: nested too deeply"
    if not isinstance(data, dict):
        return {}, "a request is an object with an `action`"
    return data, None


def _field_error(e: ValidationError) -> ErrorBody:
    first = e.errors()[0]
    loc = [str(p) for p in first["loc"] if not isinstance(p, int)]
    # The discriminated union puts the action name first; it is not a field.
    if loc and loc[0] in ACTIONS:
        loc = loc[1:]
    msg = first["msg"].removeprefix("Value error, ")
    inner = first.get("ctx", {}).get("error")
    if isinstance(inner, records.RecordError):  # a config key of the request: name it
        loc, msg = [*loc, *filter(None, [inner.path])], inner.message
    field = ".".join(loc) or None
    if first["type"] == "extra_forbidden":
        msg = "unknown field"
    return ErrorBody(code=ErrorCode.INVALID_FIELD, field=field, message=f"{field}: {msg}" if field else msg)


REQUEST: TypeAdapter[Request] = TypeAdapter(Request)
RESPONSE: TypeAdapter[Response] = TypeAdapter(Response)


def ok_response(rid: str, action: str, result: dict[str, Any], at: datetime) -> dict[str, Any]:
    return OkResponse(id=rid, action=action, result=result, at=at).model_dump(mode="json")


def error_response(rid: str, error: ErrorBody, at: datetime) -> dict[str, Any]:
    return ErrorResponse(id=rid, error=error, at=at).model_dump(mode="json")


def schemas() -> dict[str, Any]:
    """The JSON Schemas of requests, responses and the orchestration state file."""
    return {"request": REQUEST.json_schema(), "response": RESPONSE.json_schema(),
            "state": TypeAdapter(OrchestrationState).json_schema()}
