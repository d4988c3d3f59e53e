"""Specs on the design-docs branch: creating one from the shipped templates (or a project's own)."""

from __future__ import annotations

from specflowd.core.text import one_line
from specflowd.core.trailers import event_message
from specflowd.core.vocab import ErrorCode, FeedEvent
from specflowd.errors import UserError
from specflowd.repo.designdocs import DesignDocs, FileChange, Snapshot
from specflowd.repo.project import Project, template

DOCUMENTS = ("requirements.md", "design.md", "progress.md")


def render(text: str, values: dict[str, str]) -> str:
    # Plain replacement, not str.format: a prompt full of braces must not be interpreted.
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def create_spec(project: Project, spec: str, *, title: str | None, prompt: str | None) -> str:
    values = {
        "spec": spec,
        "title": one_line(title) if title else spec.replace("-", " ").replace("_", " ").strip().capitalize(),
        "prompt": prompt.strip() if prompt else "Describe what this spec should achieve.",
    }
    docs = DesignDocs(project)

    def build(snap: Snapshot) -> tuple[list[FileChange], str]:
        if spec in snap.specs():
            raise UserError(f"spec {spec!r} already exists on {project.branch}", code=ErrorCode.CONFLICT)
        files = [FileChange(f"specs/{spec}/{name}", render(template(project, "spec", name), values).encode())
                 for name in DOCUMENTS]
        message = event_message(f"spec {spec}: created", FeedEvent.SPEC_CREATED, {"Spec": spec})
        return files, message

    with docs:
        commit = docs.commit(build)
    assert commit is not None
    return commit
