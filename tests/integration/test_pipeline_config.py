"""The lifecycle configuration as a file: checked as `leadflow config check` does, saved
atomically or not at all, loaded by a new App, and followed by a running worker."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import pytest
from sqlalchemy import select

from leadflow.adapters.config_file import default_config_text, load_config
from leadflow.adapters.db import tables
from leadflow.bootstrap import App
from leadflow.config import Settings
from leadflow.domain.errors import ConfigInvalid, Conflict
from leadflow.entrypoints.worker import Jobs
from leadflow.services.pipeline_config import (
    check_pipeline,
    read_pipeline,
    save_pipeline,
    text_digest,
)
from tests.conftest import FakeClock

DEFAULT = default_config_text()


def edited(old: str, new: str, text: str = DEFAULT) -> str:
    assert old in text
    return text.replace(old, new, 1)


RENAMED = edited("    name: Marketing qualified\n", "    name: Marketing ready\n")


def save(settings: Settings, content: str, base: str | None = text_digest(DEFAULT)) -> None:
    save_pipeline(path=settings.pipeline_file, content=content,
                  in_use=settings.pipeline_in_use, base_digest=base)


def versions(app: App) -> set[str]:
    with app.engine.connect() as conn:
        return set(conn.execute(select(tables.config_versions.c.version)).scalars())


def test_the_saved_file_is_what_the_next_app_loads(settings: Settings, clock: FakeClock) -> None:
    assert settings.pipeline_in_use is None
    assert read_pipeline(path=None).text == DEFAULT
    save(settings, RENAMED.replace("\n", "\r\n"))  # as a browser sends a textarea
    target = settings.data_dir / "pipeline.yaml"
    assert settings.pipeline_file == settings.pipeline_in_use == target
    assert target.read_bytes() == RENAMED.encode()
    assert [p.name for p in target.parent.iterdir()] == ["pipeline.yaml"]  # no temporary
    app = App(settings, clock=clock)
    try:
        assert app.config.milestones[0].name == "Marketing ready"
        assert app.config.config_version in versions(app)
    finally:
        app.engine.dispose()
    # LEADFLOW_PIPELINE_PATH, when set, is the file loaded and saved.
    chosen = settings.model_copy(update={"pipeline_path": settings.data_dir / "mine.yaml"})
    assert chosen.pipeline_in_use == chosen.pipeline_file == settings.data_dir / "mine.yaml"
    save(chosen, DEFAULT, base=None)
    assert App(chosen, clock=clock).config.milestones[0].name == "Marketing qualified"


def test_a_text_with_problems_writes_nothing(settings: Settings) -> None:
    save(settings, RENAMED)
    broken = edited("        - signal: interest\n", "        - signal: nope\n", RENAMED)
    with pytest.raises(ConfigInvalid) as caught:
        save(settings, broken, base=text_digest(RENAMED))
    line = broken.splitlines().index("        - signal: nope") + 1
    assert [str(p) for p in caught.value.problems] == [
        f"stages[1].enter_when.all[1].signal (line {line}): unknown signal 'nope' (defined: "
        "content, deal_created, demo_request, interest, premium_content, pricing, "
        "product_usage, purchase, webinar)"]
    with pytest.raises(ConfigInvalid) as caught:
        save(settings, "stages: [\n", base=text_digest(RENAMED))
    assert caught.value.problems[0].location.startswith("line 2, column")
    assert settings.pipeline_file.read_text() == RENAMED
    assert [p.name for p in settings.data_dir.iterdir()] == ["pipeline.yaml"]


def test_a_change_saved_meanwhile_is_not_overwritten(settings: Settings) -> None:
    save(settings, RENAMED)
    with pytest.raises(Conflict):
        save(settings, DEFAULT)  # started from the default, which is no longer in use
    assert settings.pipeline_file.read_text() == RENAMED


def test_a_stage_with_contacts_may_not_go(settings: Settings, clock: FakeClock) -> None:
    in_effect = load_config(None)
    asked: list[Collection[str]] = []

    def contacts_in(stages: Collection[str]) -> dict[str, int]:
        asked.append(stages)
        return {"suspect": 3}
    without = edited("  - key: suspect\n", "  - key: visitor\n")
    with pytest.raises(ConfigInvalid) as caught:
        check_pipeline(content=without, source="edit", in_effect=in_effect,
                       contacts_in=contacts_in)
    assert asked == [["suspect"]]
    assert "3 contact(s) are in stage 'suspect'" in caught.value.problems[0].message
    assert caught.value.problems[0].location == \
        f"stages (line {DEFAULT.splitlines().index('stages:') + 1})"
    check_pipeline(content=RENAMED, source="edit", in_effect=in_effect,
                   contacts_in=contacts_in)  # no stage goes: nothing asked
    assert len(asked) == 1


def test_a_running_worker_follows_the_file(app: App, settings: Settings,
                                           clock: FakeClock) -> None:
    worker_app = App(settings, clock=clock)
    jobs = Jobs(worker_app)
    try:
        jobs._nurture_full_at = clock.now()
        jobs.relay_once()
        assert worker_app.config.config_version == app.config.config_version
        save(settings, RENAMED)  # what the settings page of another process does
        app.use_config(App(settings, clock=clock).config)
        assert app.config.config_version in versions(app)
        jobs.relay_once()
        assert worker_app.config.milestones[0].name == "Marketing ready"
        assert worker_app.ctx.config is worker_app.config
        assert jobs._nurture_full_at == float("-inf")  # the next nurture pass sees everyone
        # Edited by hand and broken: logged, and the configuration in use stays.
        Path(settings.pipeline_file).write_text(RENAMED + "bogus: [\n")
        assert not worker_app.refresh_config()
        assert worker_app.config.milestones[0].name == "Marketing ready"
        assert worker_app.config_file_problems is not None
        assert not worker_app.refresh_config()  # said once
        Path(settings.pipeline_file).write_text(DEFAULT)
        assert worker_app.refresh_config()
        assert worker_app.config.milestones[0].name == "Marketing qualified"
        assert worker_app.config_file_problems is None
    finally:
        worker_app.engine.dispose()
