"""Packing and unpacking Amaranth data layouts to and from the flat integers a Verilog port carries."""

from amaranth import Shape
from amaranth.lib import data

__all__ = ["pack_value", "unpack_value"]


def unpack_value(layout, value):
    """A flat integer as nested dicts/lists of ints, following ``layout`` (signed fields sign-extended)."""
    if isinstance(layout, data.StructLayout):
        return {name: unpack_value(field.shape, value >> field.offset) for name, field in layout}
    if isinstance(layout, data.ArrayLayout):
        width = Shape.cast(layout.elem_shape).width
        return [unpack_value(layout.elem_shape, value >> (n * width)) for n in range(layout.length)]
    shape = Shape.cast(layout)
    value &= (1 << shape.width) - 1
    if shape.signed and value >> (shape.width - 1):
        value -= 1 << shape.width
    return value


def pack_value(layout, fields):
    """Nested dicts/lists of ints packed into the flat integer of ``layout``."""
    if isinstance(layout, data.StructLayout):
        return sum(pack_value(field.shape, fields.get(name, 0)) << field.offset for name, field in layout)
    if isinstance(layout, data.ArrayLayout):
        width = Shape.cast(layout.elem_shape).width
        return sum(pack_value(layout.elem_shape, v) << (n * width) for n, v in enumerate(fields))
    shape = Shape.cast(layout)
    if not (-(1 << (shape.width - 1)) if shape.signed else 0) <= fields < (1 << (shape.width - (1 if shape.signed else 0))):
        raise ValueError(f"{fields} does not fit {shape}")
    return fields & ((1 << shape.width) - 1)
