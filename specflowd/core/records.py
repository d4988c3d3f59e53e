"""Records: plain dataclasses, turned into JSON-able data and back, checked against their type hints.

Why not pydantic here (the daemon still uses it where it validates what others send it: request
files, agents' result records): importing pydantic costs about 90 ms, twice a bare Python start,
and the commands people and agents run all the time (`status`, `list`, `plan`, `mark`) read the
config and the state files and must cost about what a git command costs. Those files are the
daemon's own and a person's TOML; a checker that knows exactly the types they use is enough.

A field's type may be: str, int, float (an int is taken), bool, None, a StrEnum (by value),
datetime (ISO 8601 text), list[T], dict[str | int, T], Literal[...], T | None, another record, and
`Annotated[T, Check(...)]` for bounds and patterns. Loading refuses unknown keys, missing required
keys and wrong types with a RecordError naming the field's dotted path. Converters are compiled
once per class, so a state file of hundreds of runs loads in well under a millisecond per run.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

T = TypeVar("T")
Convert = Callable[[Any, str], Any]

_MISSING = dataclasses.MISSING


@typing.dataclass_transform(kw_only_default=True, field_specifiers=(dataclasses.field,))
def record(cls: type[T]) -> type[T]:
    """A record class: a dataclass with slots whose fields are given by name."""
    return dataclasses.dataclass(slots=True, kw_only=True)(cls)


class RecordError(ValueError):
    """A value that does not fit its record: `path` is the field's dotted name ("" for the top)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


@dataclasses.dataclass(frozen=True)
class Check:
    """Bounds and a pattern for a field: `Annotated[int, Check(ge=1, le=256)]`."""

    ge: float | None = None
    le: float | None = None
    pattern: str | None = None
    max_len: int | None = None

    def __call__(self, value: Any, path: str) -> Any:
        if value is None:  # `Annotated[float | None, Check(ge=0)]`: nothing to bound
            return value
        if self.ge is not None and value < self.ge:
            raise RecordError(path, f"must be at least {_num(self.ge)}, not {value!r}")
        if self.le is not None and value > self.le:
            raise RecordError(path, f"must be at most {_num(self.le)}, not {value!r}")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise RecordError(path, f"{value!r} does not match {self.pattern}")
        if self.max_len is not None and len(value) > self.max_len:
            raise RecordError(path, f"is {len(value)} long; at most {self.max_len} is allowed")
        return value

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> Any:
        """The bounds in the JSON Schemas that `specflowd schema` prints (pydantic asks for them by
        this name; records do not import pydantic)."""
        out = handler(schema)
        for key, value in (("minimum", self.ge), ("maximum", self.le), ("pattern", self.pattern),
                           ("maxLength", self.max_len)):
            if value is not None:
                out[key] = value
        return out


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table", type(None): "nothing"}.get(type(value), type(value).__name__)


# ---- converters, compiled once per type ----

def _strict(kind: type, name: str) -> Convert:
    def convert(value: Any, path: str) -> Any:
        if type(value) is not kind:
            raise RecordError(path, f"expected {name}, got {_kind(value)} ({value!r})")
        return value
    return convert


def _float(value: Any, path: str) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise RecordError(path, f"expected a number, got {_kind(value)} ({value!r})")


def _datetime(value: Any, path: str) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise RecordError(path, f"expected a time (ISO 8601), got {value!r}")


def _enum(kind: type[Enum]) -> Convert:
    by_value = {m.value: m for m in kind}

    def convert(value: Any, path: str) -> Any:
        try:
            return by_value[value]
        except (KeyError, TypeError):
            allowed = ", ".join(repr(v) for v in by_value)
            raise RecordError(path, f"{value!r} is not one of {allowed}") from None
    return convert


def _literal(allowed: tuple[Any, ...]) -> Convert:
    def convert(value: Any, path: str) -> Any:
        if value not in allowed or type(value) is not type(next(a for a in allowed if a == value)):
            raise RecordError(path, f"{value!r} is not one of {', '.join(repr(a) for a in allowed)}")
        return value
    return convert


def _optional(inner: Convert) -> Convert:
    return lambda value, path: None if value is None else inner(value, path)


def _list(inner: Convert) -> Convert:
    def convert(value: Any, path: str) -> list[Any]:
        if type(value) is not list:
            raise RecordError(path, f"expected a list, got {_kind(value)}")
        return [inner(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return convert


def _dict(key: type, inner: Convert) -> Convert:
    def convert(value: Any, path: str) -> dict[Any, Any]:
        if not isinstance(value, dict):
            raise RecordError(path, f"expected a table, got {_kind(value)}")
        if key is int:  # JSON keys are text
            try:
                return {int(k): inner(v, _join(path, k)) for k, v in value.items()}
            except ValueError:
                raise RecordError(path, "its keys must be integers") from None
        return {str(k): inner(v, _join(path, k)) for k, v in value.items()}
    return convert


def _checked(inner: Convert, checks: list[Check]) -> Convert:
    def convert(value: Any, path: str) -> Any:
        value = inner(value, path)
        for check in checks:
            check(value, path)
        return value
    return convert


_SCALARS: dict[Any, Convert] = {
    str: _strict(str, "a string"), int: _strict(int, "an integer"), bool: _strict(bool, "a boolean"),
    float: _float, datetime: _datetime,
}


def _converter(hint: Any) -> Convert:
    if hint in _SCALARS:
        return _SCALARS[hint]
    if hint is Any:
        return lambda value, path: value
    if isinstance(hint, type) and issubclass(hint, Enum):
        return _enum(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _loader(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return _checked(_converter(args[0]), [a for a in hint.__metadata__ if isinstance(a, Check)])
    if origin is typing.Literal:
        return _literal(args)
    if origin in (types.UnionType, typing.Union):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            return _optional(_converter(rest[0]))
        raise TypeError(f"records support only `T | None` unions, not {hint}")
    if origin is list:
        return _list(_converter(args[0]))
    if origin is dict:
        return _dict(args[0], _converter(args[1]))
    raise TypeError(f"records do not support the type {hint}")


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    convert: Convert
    required: bool


_FIELDS: dict[type, dict[str, _Field]] = {}


def _fields(cls: type) -> dict[str, _Field]:
    found = _FIELDS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        found = {}
        _FIELDS[cls] = found  # before converting: a record may hold itself (recursion)
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            required = f.default is _MISSING and f.default_factory is _MISSING
            found[f.name] = _Field(f.name, _converter(hints[f.name]), required)
    return found


def _loader(cls: type) -> Convert:
    return lambda value, path: load(cls, value, path)


def make(cls: type[T], values: Mapping[str, Any], path: str = "") -> T:
    """`cls(**values)`, with a RecordError its own check (`__post_init__`) raises put at `path`."""
    try:
        return cls(**values)
    except RecordError as e:
        raise RecordError(_join(path, e.path) if e.path else path, e.message) from None


def _given(cls: type, data: Any, path: str, *, partial: bool) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise RecordError(path, f"expected a table, got {_kind(data)}")
    fields = _fields(cls)
    out = {}
    for key, value in data.items():
        f = fields.get(key)
        if f is None:
            raise RecordError(_join(path, key), f"unknown field (known: {', '.join(fields)})")
        out[key] = f.convert(value, _join(path, key))
    if not partial:
        for f in fields.values():
            if f.required and f.name not in out:
                raise RecordError(_join(path, f.name), "missing")
    return out


def load(cls: type[T], data: Any, path: str = "") -> T:
    """`data` (as JSON or TOML reads it) as a `cls`; RecordError naming the first field that does not fit."""
    return make(cls, _given(cls, data, path, partial=False), path)


def given(cls: type, data: Any, path: str = "") -> dict[str, Any]:
    """The keys `data` sets, each checked and converted as `cls` types it: overrides that apply
    only what they name."""
    return _given(cls, data, path, partial=True)


def dump(obj: Any) -> Any:
    """A record (or a value in one) as JSON-able data: enums as their values, times as ISO text."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: dump(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, datetime):
        text = obj.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(obj, list | tuple):
        return [dump(v) for v in obj]
    if isinstance(obj, dict):
        return {(k.value if isinstance(k, Enum) else k): dump(v) for k, v in obj.items()}
    return obj


def to_json(obj: Any) -> str:
    """A record as JSON text, indented, as state files and `--json` output hold it."""
    return json.dumps(dump(obj), indent=2, ensure_ascii=False)


def from_json(cls: type[T], text: bytes | str, path: str = "") -> T:
    """JSON text as a `cls`; ValueError (a RecordError, or the JSON parser's) when it does not fit."""
    return load(cls, json.loads(text), path)
