"""cocotb drivers for ``amaranth.lib.stream`` interfaces (``NAME__valid``, ``NAME__ready``, ``NAME__payload``).

In the style of cocotbext-axi: a :class:`StreamSource` sends queued words, a :class:`StreamSink`
collects them, a :class:`StreamMonitor` watches a port, each as its own coroutine, each with an
optional pause generator (``set_pause_generator``, ``True`` = idle this cycle) for random idle
cycles and back-pressure. Inputs are driven at the falling edge and outputs sampled after
``ReadOnly``, so a handshake seen there completes at the next rising edge. Each part counts cycles
from its start, so that a bench can tell on which cycle a word moved.
"""

import itertools
from collections import deque

import cocotb
from cocotb.triggers import Event, FallingEdge, ReadOnly

__all__ = ["StreamSource", "StreamSink", "StreamMonitor"]


class _Port:
    def __init__(self, dut, name, clock):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.clock = clock
        self.cycle = 0
        self._pause = itertools.repeat(False)

    def set_pause_generator(self, generator=None):
        """Idle on the cycles ``generator`` yields ``True`` for (none if ``None``)."""
        self._pause = generator if generator is not None else itertools.repeat(False)


class StreamSource(_Port):
    """Sends words (integers) on the stream ``name`` of ``dut``, one per accepted handshake.

    Members
    -------
    sent : list of int
        The cycle each word was accepted on.
    """

    def __init__(self, dut, name, clock):
        super().__init__(dut, name, clock)
        self.queue, self.sent = deque(), []
        self.valid.value = 0
        self._idle = Event()
        cocotb.start_soon(self._run())

    def send(self, words):
        """Queue ``words``."""
        self.queue.extend(int(w) for w in words)
        self._idle.clear()

    async def wait(self):
        """Until every queued word has been accepted."""
        if self.queue:
            await self._idle.wait()

    async def _run(self):
        while True:
            await FallingEdge(self.clock)
            self.cycle += 1
            offer = bool(self.queue) and not next(self._pause)
            self.valid.value = int(offer)
            if offer:
                self.payload.value = self.queue[0]
            await ReadOnly()
            if offer and self.ready.value == 1:
                self.queue.popleft()
                self.sent.append(self.cycle)
                if not self.queue:
                    self._idle.set()


class StreamSink(_Port):
    """Takes words from the stream ``name`` of ``dut``: ``received`` holds ``(cycle, word)``."""

    def __init__(self, dut, name, clock):
        super().__init__(dut, name, clock)
        self.received = []
        self.ready.value = 0
        cocotb.start_soon(self._run())

    async def _run(self):
        while True:
            await FallingEdge(self.clock)
            self.cycle += 1
            ready = not next(self._pause)
            self.ready.value = int(ready)
            await ReadOnly()
            if ready and self.valid.value == 1:
                raw = self.payload.value
                if not raw.is_resolvable:
                    raise AssertionError(f"X on {self.payload._name} at cycle {self.cycle}: {raw}")
                self.received.append((self.cycle, int(raw)))


class StreamMonitor(_Port):
    """Records every word offered on an output the design does not wait on (``ready`` held high)."""

    def __init__(self, dut, name, clock):
        super().__init__(dut, name, clock)
        self.ready.value = 1
        self.seen = []
        cocotb.start_soon(self._run())

    async def _run(self):
        while True:
            await FallingEdge(self.clock)
            self.cycle += 1
            await ReadOnly()
            if self.valid.value == 1:
                raw = self.payload.value
                if not raw.is_resolvable:
                    raise AssertionError(f"X on {self.payload._name} at cycle {self.cycle}: {raw}")
                self.seen.append((self.cycle, int(raw)))
