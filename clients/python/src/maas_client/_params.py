"""Keyword arguments -> fields of a protobuf message, checked against its descriptor (so a new proto field is
usable at once, and a typo is an error naming the allowed fields)."""

from __future__ import annotations

from typing import Any, Mapping

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from maas_client.connection import check


def set_fields(message: Message, params: Mapping[str, Any], what: str) -> None:
    """Sets message.<name> = value for each item. Enum fields take their value name (case-insensitive, e.g.
    covariance_type="diag"); message fields take a message or a mapping (set recursively); repeated fields take
    iterables."""
    fields = message.DESCRIPTOR.fields_by_name
    for name, value in params.items():
        check(name in fields, f"{what}: unknown parameter {name!r} (allowed: {', '.join(sorted(fields)) or 'none'})")
        field = fields[name]
        if value is None:
            continue
        is_repeated = field.is_repeated
        if field.type == FieldDescriptor.TYPE_MESSAGE and not is_repeated:
            target = getattr(message, name)
            if isinstance(value, Message):
                target.CopyFrom(value)
            else:
                check(isinstance(value, Mapping), f"{what}: {name} expects a mapping of its fields")
                set_fields(target, value, f"{what}.{name}")
            continue
        enum = field.enum_type
        if enum is not None and not is_repeated and isinstance(value, str):
            names = {v.name.lower(): v.number for v in enum.values}
            check(value.lower() in names, f"{what}: {name}={value!r} is not one of {', '.join(sorted(names))}")
            value = names[value.lower()]
        try:
            if is_repeated:
                container = getattr(message, name)
                del container[:]
                container.extend(value)
            else:
                setattr(message, name, value)
        except (TypeError, ValueError) as e:
            check(False, f"{what}: bad value for {name}: {e}")
