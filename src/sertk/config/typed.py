"""Typed YAML: plain nested dicts checked against dataclass field types.

Builds frozen dataclasses from ``yaml.safe_load`` output, applies dotted ``key=value``
overrides, and raises :class:`~sertk.errors.ConfigError` naming the key for unknown keys and
wrong types. Knows nothing of the experiment sections: callers pass the root dataclass.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

import yaml

from sertk.errors import ConfigError


def plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def apply_override(data: dict[str, Any], override: str, root: type) -> None:
    """Set ``key=value`` (a dotted key) in ``data``, checking the key against ``root``."""
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {override!r} must look like key=value, e.g. train.lr=1e-4")
    parts = key.split(".")
    _check_path(root, parts, override)
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {override}: value is not valid YAML: {error}") from None
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parts[: depth + 1])
            raise ConfigError(f"--set {override}: {where} is not a section, cannot set {key}")
        node = child
    node[parts[-1]] = value


def _check_path(root: type, parts: list[str], override: str) -> None:
    """Reject unknown keys in an override path before touching the data."""
    cls: Any = root
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth])
        if not (dataclasses.is_dataclass(cls) and isinstance(cls, type)):
            if _is_dict_type(cls):
                return  # free-form section (hparams, params): any key
            raise ConfigError(f"--set {override}: {where} is a value, not a section")
        hints = typing.get_type_hints(cls)
        if part not in hints:
            raise ConfigError(f"--set {override}: {_unknown(part, where, list(hints))}")
        cls = _strip_optional(hints[part])


def _unknown(key: str, where: str, valid: list[str]) -> str:
    place = f"in {where}" if where else "at the top level"
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {key!r} {place}{hint}; valid keys: {', '.join(valid)}"


def _strip_optional(hint: Any) -> Any:
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    if _is_union(hint) and len(args) == 1:
        return args[0]
    return hint


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _is_dict_type(hint: Any) -> bool:
    return hint is dict or typing.get_origin(hint) is dict


def build(cls: type, data: Any, where: str) -> Any:
    if isinstance(data, cls):
        return data
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'the config'} must be a mapping; got {data!r}")
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in hints:
            raise ConfigError(_unknown(str(key), where, list(hints)))
    values = {
        key: _check(hints[key], value, f"{where}.{key}" if where else str(key))
        for key, value in data.items()
    }
    return cls(**values)


def _check(hint: Any, value: Any, key: str) -> Any:
    """Return ``value`` converted to ``hint`` or raise ConfigError naming ``key``."""
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return build(hint, value, key)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if _is_union(hint):
        if value is None and type(None) in args:
            return None
        options = [arg for arg in args if arg is not type(None)]
        if len(options) == 1:  # Optional[X]: X's own, more precise, error
            return _check(options[0], value, key)
        for arg in options:
            try:
                return _check(arg, value, key)
            except ConfigError:
                continue
        raise _type_error(key, hint, value)
    if origin is Literal:
        if value in args and not isinstance(value, bool):
            return value
        choices = ", ".join(repr(arg) for arg in args)
        raise ConfigError(f"{key} must be one of {choices}; got {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _type_error(key, hint, value)
        item = args[0] if args else Any
        items = [_check(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise _type_error(key, hint, value)
        key_type, value_type = args if args else (Any, Any)
        return {
            _check(key_type, k, f"{key} key {k!r}"): _check(value_type, v, f"{key}.{k}")
            for k, v in value.items()
        }
    return _check_scalar(hint, value, key)


def _check_scalar(hint: Any, value: Any, key: str) -> Any:
    if hint is type(None):
        if value is None:
            return None
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(
            f"{key} must be a string; got {value!r} ({type(value).__name__}); quote it in YAML "
            "(unquoted 03, 1e5, yes, null are read as numbers, booleans or null)"
        )
    else:
        raise ConfigError(f"{key}: unsupported field type {hint!r} (a bug in sertk.config)")
    raise _type_error(key, hint, value)


def _type_error(key: str, hint: Any, value: Any) -> ConfigError:
    return ConfigError(
        f"{key} must be of type {_type_name(hint)}; got {value!r} ({type(value).__name__})"
    )


def _type_name(hint: Any) -> str:
    if _is_union(hint):
        return " or ".join(_type_name(arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if typing.get_origin(hint) is not None:
        return str(hint).replace("typing.", "")
    return getattr(hint, "__name__", str(hint))
