"""The layer table and T: per-layer registers, initialised from the baked image, written at run time."""

from amaranth import Module, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from firmware.image import TABLE_FIELDS

from .accumulate import SPAN
from .layouts import STEPS_ADDRESS, bits

__all__ = ["row_layout", "LayerTable"]


def row_layout(config, limits, lanes):
    """One layer's row: the fields of :data:`firmware.image.TABLE_FIELDS`, each as wide as ``limits`` allow."""
    max_blocks = -(-limits.max_neurons // lanes)
    return data.StructLayout({
        "n_in": unsigned(bits(max(limits.max_inputs, limits.max_neurons) + 1)),
        "n_out": unsigned(bits(limits.max_neurons + 1)),
        "recurrent": 1,
        "blocks": unsigned(bits(max_blocks + 1)),
        "weight_base": unsigned(bits(limits.weight_words + 1)),
        "block_base": unsigned(bits(limits.state_blocks + 1)),
        "acc_shift": signed(config.acc_shift_width),
        # Derived from ``blocks`` as it is written, so that the scheduler reads registers: an
        # event's groups of SPAN blocks less one, and whether it has more than one group.
        "more_groups": unsigned(bits(max_blocks + 1)),
        "several_groups": 1,
    })


def _derived(blocks):
    """The row's fields that follow from ``blocks`` (values, or Amaranth expressions)."""
    return {"more_groups": (blocks + SPAN - 1) // SPAN - 1, "several_groups": blocks > SPAN}


class LayerTable(wiring.Component):
    """The layer table and the sequence length, as registers.

    Parameters
    ----------
    image : firmware.image.DeviceImage
        Gives the initial values, the number of layers and the configuration.
    limits : firmware.image.DeviceLimits

    Members
    -------
    write : In(data.StructLayout)
        ``valid``, ``address`` (``layer * 8 + field``, or :data:`~hdl.layouts.STEPS_ADDRESS` for
        ``T``) and ``word``: a ``LOAD_TABLE`` write.
    rows : Out(data.ArrayLayout(row_layout, layers))
        The table; index it with a layer number.
    n_steps : Out
        ``T``.
    """

    def __init__(self, image, limits):
        self.image, self.limits = image, limits
        self.row = row_layout(image.config, limits, image.lanes)
        layers = len(image.layers)
        # (A row of no blocks, which no packed image has, would have -1 more groups: 0 here.)
        init = [{**{name: getattr(e, name) for name in TABLE_FIELDS},
                 **{name: max(0, int(v)) for name, v in _derived(e.blocks).items()}} for e in image.layers]
        super().__init__({
            "write": In(data.StructLayout({"valid": 1, "address": unsigned(bits(8 * layers + 8)), "word": 32})),
            "rows": Out(data.ArrayLayout(self.row, layers), init=init),
            "n_steps": Out(range(limits.max_steps + 1), init=image.n_steps),
        })

    def elaborate(self, platform):
        m = Module()
        write = self.write
        with m.If(write.valid):
            for row in range(len(self.image.layers)):
                for f, name in enumerate(TABLE_FIELDS):
                    field = self.rows[row][name]
                    with m.If(write.address == 8 * row + f):
                        m.d.sync += field.eq(write.word)
                        if name == "blocks":
                            m.d.sync += [self.rows[row][k].eq(v) for k, v in _derived(write.word).items()]
            with m.If(write.address == STEPS_ADDRESS):
                m.d.sync += self.n_steps.eq(write.word)
        return m
