"""Register copies for nets that reach too many places: each copy drives a part of the loads.

A register whose output feeds hundreds of distributed-RAM cells across the chip (a memory's
address) spends most of a cycle in routing. Several copies, each feeding one part (a bank, a
lane's memory), let the placer put each copy beside its loads. Yosys merges flip-flops that are
identical (same input, clock and reset), so the copies are marked ``keep`` and every Yosys flow
here runs :data:`KEEP_MARKED` after reading the design, which puts ``keep`` on the flip-flops
themselves (Yosys leaves a cell marked ``keep`` alone; the mark on a wire alone does not stop the
merge). Vivado honours ``keep`` on the register as written.

A net that reaches nearly every flip-flop (the core's enable, the reset) cannot be served by copies:
its loads are everywhere. On ECP5 it goes on a global network instead (:func:`global_net`, a
DCCA), as a clock does; the fabric routing to it then stops at the buffer.
"""

from amaranth import Instance, Signal

__all__ = ["register_copies", "KEEP_MARKED", "dcca", "global_net"]

#: Yosys commands, run after reading the design: the cells driving ``keep`` wires get ``keep``.
KEEP_MARKED = "proc; setattr -set keep 1 a:keep %ci1 c:* %i"


def register_copies(m, value, count, name):
    """``count`` registers, each ``value`` one cycle later, kept apart by synthesis."""
    copies = [Signal.like(value, name=f"{name}{k}", attrs={"keep": 1}) for k in range(count)]
    m.d.sync += [copy.eq(value) for copy in copies]
    return copies


def dcca(m, value, name):
    """``value`` through an ECP5 DCCA (a global clock buffer, always enabled) named ``name``: a signal
    on one of the global networks, which reach any slice input (nextpnr gives a buffer driving
    logic inputs one of the eight networks that can)."""
    out = Signal(name=f"{name}_global")
    m.submodules[name] = Instance("DCCA", i_CLKI=value, i_CE=1, o_CLKO=out)
    return out


def global_net(m, platform, value, name):
    """``value`` on a global network where the platform's family has one for logic (ECP5:
    :func:`dcca`); ``value`` itself elsewhere (simulation, and the Xilinx flow, which stops at
    synthesis here)."""
    if getattr(platform, "family", None) == "ecp5":
        return dcca(m, value, name)
    return value
