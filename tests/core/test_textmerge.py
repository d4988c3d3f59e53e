"""Carrying a mark's line changes onto a copy a person saved meanwhile."""

from __future__ import annotations

from specflowd.core.textmerge import reapply


def test_changed_lines_are_carried_onto_their_copy() -> None:
    base = b"# T\n- [ ] T001 a\n- [ ] T002 b\n"
    ours = b"# T\n- [x] T001 a\n- [ ] T002 b\n"
    theirs = b"# T\n- [ ] T001 a\n- [ ] T002 b\n- [ ] T003 added\n"
    assert reapply(base, ours, theirs) == b"# T\n- [x] T001 a\n- [ ] T002 b\n- [ ] T003 added\n"


def test_a_moved_line_is_found_once() -> None:
    base = b"- [ ] T001 a\n- [ ] T002 b\n"
    ours = b"- [ ] T001 a\n- [x] T002 b\n"
    theirs = b"intro\n- [ ] T001 a\n- [ ] T002 b\n"
    assert reapply(base, ours, theirs) == b"intro\n- [ ] T001 a\n- [x] T002 b\n"


def test_what_cannot_be_carried_cleanly_is_refused() -> None:
    base = b"- [ ] T001 a\n"
    assert reapply(base, b"- [x] T001 a\n", b"- [ ] T001 changed by them\n") is None
    assert reapply(base, b"- [x] T001 a\nextra\n", base) is None
    dup = b"- [ ] T001 a\n- [ ] T001 a\n"
    assert reapply(b"- [ ] T001 a\n", b"- [x] T001 a\n", b"x\n" + dup) is None
