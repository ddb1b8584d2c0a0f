"""Register copies for nets that reach too many places: each copy drives a part of the loads.

A register whose output feeds hundreds of distributed-RAM cells across the chip (a memory's
address) spends most of a cycle in routing. Several copies, each feeding one part (a bank, a
lane's memory), let the placer put each copy beside its loads. Yosys merges flip-flops that are
identical (same input, clock and reset), so the copies are marked ``keep`` and every Yosys flow
here runs :data:`KEEP_MARKED` after reading the design, which puts ``keep`` on the flip-flops
themselves (Yosys leaves a cell marked ``keep`` alone; the mark on a wire alone does not stop the
merge). Vivado honours ``keep`` on the register as written.
"""

from amaranth import Signal

__all__ = ["register_copies", "KEEP_MARKED"]

#: Yosys commands, run after reading the design: the cells driving ``keep`` wires get ``keep``.
KEEP_MARKED = "proc; setattr -set keep 1 a:keep %ci1 c:* %i"


def register_copies(m, value, count, name):
    """``count`` registers, each ``value`` one cycle later, kept apart by synthesis."""
    copies = [Signal.like(value, name=f"{name}{k}", attrs={"keep": 1}) for k in range(count)]
    m.d.sync += [copy.eq(value) for copy in copies]
    return copies
