"""Names that become paths or refs: spec ids, orchestration ids, request ids. Validated before any use."""

from __future__ import annotations

import re

SPEC_ID_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
ORCHESTRATION_ID_RE = re.compile(r"[0-9a-f]{8,40}")
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_spec_id(value: str) -> str:
    """The spec id, or ValueError saying why it cannot name a folder under specs/."""
    if not isinstance(value, str) or not SPEC_ID_RE.fullmatch(value) or ".." in value:
        raise ValueError(
            f"invalid spec id {value!r}: use 1-64 characters a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit (for example 1055-smart-batching)"
        )
    return value


def check_orchestration_id(value: str) -> str:
    if not isinstance(value, str) or not ORCHESTRATION_ID_RE.fullmatch(value):
        raise ValueError(f"invalid orchestration id {value!r}: expected 8 to 40 lowercase hex characters")
    return value


def check_request_id(value: str) -> str:
    if not isinstance(value, str) or not REQUEST_ID_RE.fullmatch(value) or ".." in value:
        raise ValueError(
            f"invalid request id {value!r}: use 1-128 characters A-Z, a-z, 0-9, '.', '_', '-'"
        )
    return value
