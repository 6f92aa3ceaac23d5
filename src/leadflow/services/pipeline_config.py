"""The lifecycle configuration as the file an admin edits: the text in effect, the checks of
`leadflow config check` on an edited text, and saving it atomically.

The configuration is a YAML file (``Settings.pipeline_file``); saving it here does not apply
it: the caller gives the returned configuration to its App (``App.use_config``), and other
processes notice the file changed (``App.refresh_config``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from leadflow.adapters.config_file import (
    DEFAULT_NAME,
    default_config_text,
    parse_config_text,
    read_config_file,
    read_yaml,
)
from leadflow.domain.config import LifecycleConfig
from leadflow.domain.errors import ConfigInvalid, ConfigProblem, Conflict, InvalidInput

MAX_CHARS = 512 * 1024
# How many contacts are in each of these stages (a read model; only removed stages are asked).
ContactsIn = Callable[[Collection[str]], Mapping[str, int]]
_saving = threading.Lock()


@dataclass(frozen=True)
class PipelineText:
    """The YAML of the configuration in effect and where it comes from."""

    text: str
    source: str  # the file's path, or the name of the shipped default
    shipped: bool  # no file: leadflow's own default

    @property
    def digest(self) -> str:
        return text_digest(self.text)


def text_digest(text: str) -> str:
    """What an edit names as the text it started from (to notice a change made meanwhile)."""
    return hashlib.sha256(_normal(text).encode()).hexdigest()


def _normal(text: str) -> str:
    # Browsers send a textarea's lines ended by CRLF; the file keeps LF and ends with one.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.endswith("\n") or not text else text + "\n"


def read_pipeline(*, path: Path | None) -> PipelineText:
    """The text at ``path`` (the file in use), or the shipped default when None."""
    if path is None:
        return PipelineText(text=default_config_text(), source=DEFAULT_NAME, shipped=True)
    return PipelineText(text=read_config_file(path), source=str(path), shipped=False)


def check_pipeline(*, content: str, source: str, in_effect: LifecycleConfig | None = None,
                   contacts_in: ContactsIn | None = None) -> LifecycleConfig:
    """The configuration ``content`` describes, checked as `leadflow config check` does;
    ConfigInvalid lists every problem with its location and line. With ``in_effect`` and
    ``contacts_in``: a stage that contacts are in may not go away either."""
    if len(content) > MAX_CHARS:
        raise InvalidInput(f"longer than {MAX_CHARS // 1024} KB", field="content")
    content = _normal(content)
    config = parse_config_text(content, source=source)
    if in_effect is not None and contacts_in is not None:
        kept = {s.key for s in config.stages}
        removed = [s.key for s in in_effect.stages if s.key not in kept]
        counts = contacts_in(removed) if removed else {}
        problems = [ConfigProblem("stages", f"{n} contact(s) are in stage {key!r}, which this "
                                  "configuration leaves out: keep the stage (its name may "
                                  "change, not its key) or move them out first")
                    for key in removed if (n := counts.get(key, 0)) > 0]
        if problems:
            raise ConfigInvalid(source, read_yaml(content, source=source).located(problems))
    return config


def save_pipeline(*, path: Path, content: str, in_use: Path | None, base_digest: str | None,
                  in_effect: LifecycleConfig | None = None,
                  contacts_in: ContactsIn | None = None) -> LifecycleConfig:
    """Check ``content`` and write it to ``path`` atomically (a temporary file renamed over
    it), or write nothing and raise ConfigInvalid. ``in_use``: the file in effect now (None:
    the shipped default); ``base_digest``: ``text_digest`` of the text the edit started
    from: when that file changed since, Conflict (someone else saved meanwhile)."""
    config = check_pipeline(content=content, source=str(path), in_effect=in_effect,
                            contacts_in=contacts_in)
    with _saving:
        if base_digest is not None:
            try:
                current = read_pipeline(path=in_use).digest
            except ConfigInvalid:  # unreadable: the page offered an empty text to replace it
                current = text_digest("")
            if current != base_digest:
                raise Conflict("the configuration was changed by someone else since this "
                               "page was opened: copy your edit, reload the page and apply "
                               "it again", field="content")
        _write_atomically(Path(path), _normal(content))
    return config


def _write_atomically(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ConfigInvalid(str(path), [ConfigProblem(
            "(file)", f"cannot write it: {exc.strerror or exc}")]) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ConfigInvalid(str(path), [ConfigProblem(
            "(file)", f"cannot write it: {exc.strerror or exc}")]) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a crash
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
