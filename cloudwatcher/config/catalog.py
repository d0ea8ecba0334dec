"""Every configuration key as data, read from the pydantic models themselves.

The README table, docs/configuration.md and the example TOML are generated from this walk
(:mod:`cloudwatcher.config.reference`), so a key, its default and its description are written
once, on the model's ``Field``, and the documentation cannot drift from them. The walk is
generic: a nested model becomes a section of dotted keys, and a list of tagged models (``targets``)
becomes one kind per member of its union, whichever models the union holds, so a provider whose
model joins the union is documented without touching this module.
"""

from __future__ import annotations

import inspect
import json
import math
from dataclasses import dataclass, replace
from pathlib import PurePath
from typing import Any, Literal, TypeGuard, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo


class Required:
    """The default of a key that has none: the user must give it."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = Required()


@dataclass(frozen=True)
class Computed:
    """A default worked out at load time, described in words (a default factory's docstring)."""

    text: str


@dataclass(frozen=True)
class Key:
    """One configuration key: ``name`` within its table, ``path`` dotted from the top."""

    name: str
    path: str
    description: str
    default: Any
    examples: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Section:
    """A TOML table of keys: ``name`` None for the top level."""

    name: str | None
    description: str
    keys: tuple[Key, ...]


@dataclass(frozen=True)
class Kind:
    """One member of the target union: its tag, its own keys and those whose default it changes."""

    tag: str
    model: type[BaseModel]
    keys: tuple[Key, ...]

    @property
    def doc(self) -> str:
        """The model's own docstring (not an inherited one), as one paragraph."""
        doc = self.model.__dict__.get("__doc__")
        return " ".join(inspect.cleandoc(doc).replace("``", "`").split()) if doc else ""


@dataclass(frozen=True)
class Catalog:
    """The keys of a settings model: top level and sections in model order, and the target kinds."""

    keys: tuple[Key, ...]
    sections: tuple[Section, ...]
    list_key: str | None
    tag_key: str | None
    common: tuple[Key, ...]
    kinds: tuple[Kind, ...]


def _is_model(annotation: Any) -> TypeGuard[type[BaseModel]]:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation holds, through ``list``, unions, ``Optional`` and ``Annotated``."""
    if _is_model(annotation):
        return [annotation]
    found: list[type[BaseModel]] = []
    for argument in get_args(annotation):
        found += [model for model in models_in(argument) if model not in found]
    return found


def tag_of(model: type[BaseModel]) -> tuple[str, str] | None:
    """``(key, value)`` of the model's discriminator: the field typed with a single ``Literal``."""
    for name, field in model.model_fields.items():
        if get_origin(field.annotation) is Literal and len(get_args(field.annotation)) == 1:
            return name, str(get_args(field.annotation)[0])
    return None


def default_of(field: FieldInfo) -> Any:
    """The key's default: a value, :data:`REQUIRED`, or :class:`Computed` for a factory with a docstring."""
    if field.is_required():
        return REQUIRED
    factory = field.default_factory
    if factory is None:
        return field.default
    if isinstance(factory, type):  # list, dict, a model: an empty value
        return factory()
    doc = inspect.getdoc(factory) or "computed at load time"
    return Computed(doc.splitlines()[0].replace("``", "`").rstrip("."))


def _key(name: str, path: str, field: FieldInfo, fallback: FieldInfo | None = None) -> Key:
    description = field.description or (fallback.description if fallback else None) or ""
    return Key(name, path, description, default_of(field), tuple(field.examples or ()))


def _common_base(models: list[type[BaseModel]]) -> type[BaseModel] | None:
    """The nearest model every member derives from that declares fields (the keys every target takes)."""
    for candidate in models[0].__mro__:
        if _is_model(candidate) and candidate.model_fields and all(issubclass(m, candidate) for m in models):
            return candidate
    return None


def _kinds(list_key: str, members: list[type[BaseModel]]) -> tuple[str | None, tuple[Key, ...], tuple[Kind, ...]]:
    base = _common_base(members)
    base_fields = base.model_fields if base is not None else {}
    common = [_key(name, f"{list_key}[].{name}", field) for name, field in base_fields.items()]
    tags = [found for model in members if (found := tag_of(model)) is not None]
    tag_key = tags[0][0] if tags else None
    if tag_key is not None:
        one_of = "one of " + ", ".join(f"`{tag}`" for _, tag in tags) + "; each kind's own keys are listed under it."
        if tag_key in base_fields:  # declared by the base (say as a plain str that each member narrows)
            index = list(base_fields).index(tag_key)
            given = common[index].description.rstrip(".") or "Which kind it is"
            common[index] = replace(common[index], description=f"{given}: {one_of}")
        else:
            tag = Key(tag_key, f"{list_key}[].{tag_key}", f"Which kind it is: {one_of}", REQUIRED)
            common.insert(1 if common else 0, tag)
    kinds: list[Kind] = []
    for model in members:
        found = tag_of(model)
        if found is None:
            continue
        keys = [
            _key(name, f"{list_key}[].{name}", field, base_fields.get(name))
            for name, field in model.model_fields.items()
            if name != found[0] and (name not in base_fields or default_of(field) != default_of(base_fields[name]))
        ]
        kinds.append(Kind(found[1], model, tuple(keys)))
    return tag_key, tuple(common), tuple(kinds)


def catalog(settings: type[BaseModel]) -> Catalog:
    """Walk ``settings``: its keys, nested sections and the kinds of its list of tagged models."""
    keys: list[Key] = []
    top: list[Key] = []
    sections: list[Section] = []
    list_key: str | None = None
    tag_key: str | None = None
    common: tuple[Key, ...] = ()
    kinds: tuple[Kind, ...] = ()
    for name, field in settings.model_fields.items():
        annotation = field.annotation
        if _is_model(annotation):
            nested = tuple(_key(sub, f"{name}.{sub}", subfield) for sub, subfield in annotation.model_fields.items())
            sections.append(Section(name, field.description or "", nested))
            keys += nested
            continue
        key = _key(name, name, field)
        keys.append(key)
        top.append(key)
        members = models_in(annotation)
        if members and list_key is None:
            list_key = name
            tag_key, common, kinds = _kinds(name, members)
    return Catalog(tuple(keys), (Section(None, "", tuple(top)), *sections), list_key, tag_key, common, kinds)


def toml_literal(value: Any) -> str:
    """``value`` written as TOML (strings, numbers, booleans, paths and lists of them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | PurePath):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_literal(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")
