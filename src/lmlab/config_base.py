"""Typed config sections: dict/TOML conversion, dotted overrides and validation messages.

Kept apart from `config.py` so that section dataclasses living next to their stage
(e.g. `model/config.py`) can share it without import cycles.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any, ClassVar

from lmlab.errors import UserError

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class Section:
    """Mixin for a config dataclass; `_section` is its name in the config tree."""

    _section: ClassVar[str] = ""

    @classmethod
    def field_types(cls) -> dict[str, type]:
        return dict(_field_types(cls))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "") -> "Section":
        types = cls.field_types()
        unknown = sorted(set(values) - set(types))
        if unknown:
            raise UserError(f"{where or 'config'}: unknown field {cls._section}.{unknown[0]}; "
                            f"valid fields of [{cls._section}]: {', '.join(types)}")
        return cls(**{k: coerce(v, types[k], f"{cls._section}.{k}") for k, v in values.items()})


@functools.cache
def _field_types(cls: type) -> dict[str, type]:
    """Resolved once per class: typing.get_type_hints costs about half a millisecond, and planning a
    study builds thousands of configs, five sections each."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [v.to_dict() if isinstance(v, Section) else v for v in value]
    return value


def section_list_type(kind: Any) -> type | None:
    """The Section class of a `list[SomeSection]` field, else None."""
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind)
        if isinstance(item, type) and issubclass(item, Section):
            return item
    return None


def is_str_list(kind: Any) -> bool:
    """A `list[str]` field (e.g. train.loggers): TOML arrays of strings, "a,b" on the command line."""
    return typing.get_origin(kind) is list and typing.get_args(kind) == (str,)


def require(ok: bool, section: Section, field: str, valid: str) -> None:
    """Fail with the one-line message every validation uses: field, bad value, what is valid."""
    if not ok:
        value = getattr(section, field)
        raise UserError(f"{section._section}.{field}={value!r} is invalid; expected {valid}")


def require_choice(section: Section, field: str, choices: typing.Iterable[str]) -> None:
    choices = list(choices)
    require(getattr(section, field) in choices, section, field, "one of " + ", ".join(choices))


def coerce(value: Any, kind: type, name: str) -> Any:
    """Convert a TOML value or a command-line string to the field's type, or fail naming it."""
    item = section_list_type(kind)
    if item is not None:
        if not isinstance(value, list):
            raise UserError(f"{name} must be a list of tables ([[{name}]] in TOML), got {value!r}")
        out = []
        for i, v in enumerate(value):
            if isinstance(v, Section):
                v = v.to_dict()
            if not isinstance(v, dict):
                raise UserError(f"{name}[{i}] must be a table of fields, got {v!r}")
            try:
                out.append(item.from_dict(v, f"{name}[{i}]"))
            except UserError as err:
                raise UserError(f"{name}[{i}]: {err}") from None
        return out
    if is_str_list(kind):
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise UserError(f"{name}={value!r} has the wrong type; expected a list of strings (\"a,b\" on the "
                        f"command line)")
    if isinstance(value, str) and kind is not str:
        return _parse(value, kind, name)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is bool and isinstance(value, bool) or kind is str and isinstance(value, str):
        return value
    if kind in (int, float) and isinstance(value, kind) and not isinstance(value, bool):
        return value
    raise UserError(f"{name}={value!r} has the wrong type; expected {kind.__name__}")


def _parse(text: str, kind: type, name: str) -> Any:
    try:
        if kind is bool:
            low = text.strip().lower()
            if low in _TRUE | _FALSE:
                return low in _TRUE
            raise ValueError
        return kind(text.replace("_", "") if kind is int else text)
    except ValueError:
        hint = "true or false" if kind is bool else f"an {kind.__name__}" if kind is int else f"a {kind.__name__}"
        raise UserError(f"{name}={text!r} is not valid; expected {hint}") from None
