"""Reading the lifecycle configuration from YAML, with line numbers in every problem."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from leadflow.domain.config import LifecycleConfig, parse_config
from leadflow.domain.errors import ConfigInvalid, ConfigProblem

DEFAULT_NAME = "default_pipeline.yaml"


def default_config_text() -> str:
    return resources.files("leadflow").joinpath(DEFAULT_NAME).read_text(encoding="utf-8")


def _line_index(node: yaml.Node, path: str, out: dict[str, int],
                duplicates: list[ConfigProblem]) -> None:
    out.setdefault(path or "(top)", node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = f"{path}.{key.value}" if path else str(key.value)
            line = key.start_mark.line + 1
            if name in out:
                # YAML keeps the last of two equal keys silently; say so instead.
                duplicates.append(ConfigProblem(
                    f"{name} (line {line})", f"duplicate key (first on line {out[name]})"))
                continue
            out[name] = line
            _line_index(value, name, out, duplicates)
            out[name] = line
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, f"{path}[{i}]", out, duplicates)


def with_lines(problems: list[ConfigProblem], lines: dict[str, int]) -> list[ConfigProblem]:
    out = []
    for p in problems:
        loc = p.location
        probe = loc
        while probe and probe not in lines:
            probe = probe.rsplit(".", 1)[0] if "." in probe else probe.rsplit("[", 1)[0] \
                if "[" in probe else ""
        line = lines.get(probe or "(top)")
        out.append(ConfigProblem(f"{loc} (line {line})" if line else loc, p.message))
    return out


@dataclass
class YamlDocument:
    """A parsed YAML file with the line of every key path, and the keys written twice."""

    data: Any
    lines: dict[str, int]
    duplicates: list[ConfigProblem]

    def located(self, problems: list[ConfigProblem]) -> list[ConfigProblem]:
        return self.duplicates + with_lines(problems, self.lines)


# libyaml's parser when PyYAML was built with it (about ten times faster: every App start
# reads the lifecycle file), else the pure-Python one; both are the safe loader.
LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(content: str, *, source: str) -> YamlDocument:
    """Parse YAML; a syntax error is a ConfigInvalid naming its line and column."""
    try:
        node = yaml.compose(content, Loader=LOADER)
        data: Any = yaml.load(content, Loader=LOADER)
    except yaml.YAMLError as fast_error:
        # Said by the pure-Python parser, whose marks point where the mistake is (libyaml's
        # often point at the end of the input); the libyaml error if it finds none.
        try:
            yaml.compose(content, Loader=yaml.SafeLoader)
            yaml.load(content, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            raise _invalid(exc, source) from None
        raise _invalid(fast_error, source) from None
    doc = YamlDocument(data, {}, [])
    if node is not None:
        _line_index(node, "", doc.lines, doc.duplicates)
    return doc


def _invalid(exc: yaml.YAMLError, source: str) -> ConfigInvalid:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
    problem = getattr(exc, "problem", None) or str(exc)
    return ConfigInvalid(source, [ConfigProblem(where, f"not valid YAML: {problem}")])


def parse_config_text(content: str, *, source: str) -> LifecycleConfig:
    doc = read_yaml(content, source=source)
    data, duplicates = doc.data, doc.duplicates
    try:
        config = parse_config(data, source=source)
    except ConfigInvalid as exc:
        raise ConfigInvalid(source, doc.located(exc.problems)) from None
    if duplicates:
        raise ConfigInvalid(source, duplicates)
    return config


def load_config(path: Path | None) -> LifecycleConfig:
    """The configuration at ``path``, or the one shipped with leadflow."""
    if path is None:
        return parse_config_text(default_config_text(), source=DEFAULT_NAME)
    return parse_config_text(read_config_file(path), source=str(path))


def read_config_file(path: str | Path) -> str:
    """A configuration file's text; unreadable or not UTF-8: ConfigInvalid saying so."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigInvalid(str(path), [ConfigProblem("(file)", exc.strerror or str(exc))]) \
            from None
    except UnicodeDecodeError as exc:
        raise ConfigInvalid(str(path), [ConfigProblem(
            "(file)", f"not UTF-8 text (byte {exc.start})")]) from None
