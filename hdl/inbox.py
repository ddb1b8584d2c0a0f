"""The core's inbox: up to two input words ahead of the core, and the core's clock enable, a register.

Within a sample the core runs exactly as with back-to-back input (the cycle model of
:mod:`hdl.cycles`): it stands still on every cycle it could ask for a word that has not arrived,
that is while the sample is under way (its first word taken, its last result word not yet out),
words of it are still owed (fewer than ``T`` step ends have come) and the inbox is empty. Those
cycles are left out of the sample's cycle count, so RESULT's count does not depend on the link.

The enable reaches every flip-flop and memory port of the core: driven by logic (as the device
once did, from the scheduler's ``ready``) that net was the design's slowest. Here it is decided
a cycle ahead, from the next values of the inbox's fill, the step count and the sample's flag, and
held in a register. It is conservative: the core also stops on a cycle it would not have asked
for input; that costs time only while the input is behind, and never changes the schedule.
"""

from amaranth import Array, Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .arith import nudged
from .layouts import event_layout

__all__ = ["Inbox"]


class Inbox(wiring.Component):
    """Two words of input between the event sources and the core, and the core's ``run`` register.

    Parameters
    ----------
    config : quant.fixedpoint.FixedPointConfig
    max_inputs, max_steps : int
        Limits of the device (the event format, and ``T``).

    Members
    -------
    push : In(stream.Signature(event_layout))
        Words of the sample from the link or the image encoder; ``end`` words close steps.
    events : Out(stream.Signature(event_layout))
        To the core; its payload and ``valid`` are registers.
    n_steps : In
        ``T``.
    clear : In(1)
        A new sample begins: no step ends received, not under way.
    finished : In(1)
        The core's last result word of the sample leaves this cycle (counted only when ``run``).
    run : Out(1)
        The core's enable this cycle (a register).
    counting : Out(1)
        The sample is under way: its first word taken, its last result word not yet out.
    steps : Out
        Step ends received in this sample.
    full : Out(1)
        ``steps == n_steps``: the sample has all its step ends (a register, so that the sources'
        ``valid``, which waits on it, waits on no comparison).
    """

    def __init__(self, config, max_inputs, max_steps):
        layout = event_layout(config, max_inputs)
        super().__init__({
            "push": In(stream.Signature(layout)),
            "events": Out(stream.Signature(layout)),
            "n_steps": In(range(max_steps + 1)),
            "clear": In(1),
            "finished": In(1),
            "run": Out(1, init=1),
            "steps": Out(range(max_steps + 1)),
            "full": Out(1),
            "counting": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        push, events = self.push, self.events
        count = Signal(range(3))
        second = Signal.like(events.payload)
        counting = self.counting
        m.d.comb += [push.ready.eq(count != 2), events.valid.eq(count != 0)]
        pushed = push.valid & push.ready
        popped = events.valid & events.ready & self.run

        # The words: the head is the core's payload, the second waits behind it.
        with m.Switch(Mux(pushed, 2, 0) | popped):
            with m.Case(2):            # pushed, not popped
                with m.If(count == 0):
                    m.d.sync += events.payload.eq(push.payload)
                with m.Else():
                    m.d.sync += second.eq(push.payload)
            with m.Case(1):            # popped, not pushed
                m.d.sync += events.payload.eq(second)
            with m.Case(3):            # both: the word behind the head moves up
                m.d.sync += events.payload.eq(Mux(count == 1, push.payload, second))
                with m.If(count == 2):
                    m.d.sync += second.eq(push.payload)

        # Next cycle's state, and from it next cycle's enable.
        ended = pushed & push.payload.end
        count_next = Signal.like(count)
        steps_next = Signal.like(self.steps)
        counting_next = Signal()
        leaving = self.finished & self.run
        m.d.comb += [count_next.eq(nudged(count, pushed - popped, -1, 1)),
                     steps_next.eq(Mux(self.clear, 0, Mux(ended, self.steps + 1, self.steps))),
                     counting_next.eq(~self.clear & (counting | popped) & ~leaving)]
        # The enable for each outcome of the cycle's late answers (a word taken: ``popped``, which
        # waits on the scheduler's choice; the sample's last result leaving; a word pushed, which
        # waits on the step decoder's or the encoder's logic, and whether it ends a step), each
        # from registers, then chosen by them: ``run`` through the count's adder and the test after
        # the core's ``ready`` was the device's critical path (12.0 ns, router1, at f22c0e3), and
        # through the push and the steps still owed after it (10.6 ns at 0038b9f).
        # Whether step ends are still owed next cycle, without and with a step end pushed.
        owed_next = [Mux(self.clear, self.n_steps != 0, steps != self.n_steps)
                     for steps in (self.steps, self.steps + 1)]
        run_next = []
        for outcome in range(16):
            took, left_, came, closing = (outcome >> k & 1 for k in range(4))
            idle = (count + came - took) == 0
            run_next.append(~(~self.clear & (counting | took) & ~left_ & owed_next[came & closing] & idle))
        full_next = Mux(self.clear, self.n_steps == 0,
                        Mux(ended, self.steps + 1 == self.n_steps, self.steps == self.n_steps))
        m.d.sync += [count.eq(count_next), self.steps.eq(steps_next), counting.eq(counting_next),
                     self.full.eq(full_next),
                     self.run.eq(Array(run_next)[Cat(popped, leaving, pushed, push.payload.end)])]
        return m
