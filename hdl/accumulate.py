"""The accumulate unit: step sums ``acc[b] += W[b, j] * a`` for input events, four blocks of ``P`` neurons per cycle.

An event ``(j, a)`` of layer ``l`` costs ``ceil(blocks / 4)`` cycles: each cycle reads four weight
words, blocks ``4k .. 4k + 3`` of input ``j``, and adds ``4P`` products into the step sums. The four
words are consecutive in the weight array; the array is held as two memories, the words of even
and of odd address, each with two read ports (a true-dual-port block RAM), so that any four
consecutive words are two reads from each. The step sums are kept per layer and per step parity
(so that a layer can accumulate step ``t + 1`` while step ``t`` waits for its update) and split
into four banks by block modulo 4 (so that four blocks are written per cycle).

Pipeline (six stages, each cut where nextpnr-ecp5 put a critical path): the issue registered, the
row product ``j * blocks``, the weight reads, the words registered, the products, then the
read-modify-write of the step sums (read and write in the same stage, so consecutive events never
see a stale sum). A block's first
write of a step overwrites instead of adding: the update unit marks each block *consumed* when it
reads it (``consume``), which clears the sum for the next step without a clearing pass; a block
that no event of a step wrote reads as zero. Blocks past the layer's last (the tail of a last group
of four) are neither written nor marked.
"""

from amaranth import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from .layouts import bits, pack_lanes

__all__ = ["AccumulateUnit", "SPAN"]

#: Blocks an event adds to per cycle.
SPAN = 4


class AccumulateUnit(wiring.Component):
    """Step sums of every layer, and the weights.

    Parameters
    ----------
    image : firmware.image.DeviceImage
        The baked network (weights are the memories' initial contents).
    limits : firmware.image.DeviceLimits
    acc_width : int
        Signed bits of a step sum.

    Members
    -------
    issue : In(data.StructLayout)
        One cycle of work: ``valid``; ``layer``, step ``parity``, the layer's ``blocks`` and weight
        ``base``; the input ``index`` ``j`` (its block 0 is weight word ``base + j * blocks``),
        ``group`` ``k`` (blocks ``4k .. 4k + 3``), ``amplitude``; or ``end``: the layer's step is
        complete (no memory access), reported on ``done`` when it leaves the pipeline.
    done : Out(data.StructLayout)
        ``valid`` and ``layer``: a step's sums are final (written).
    read : In(data.StructLayout)
        The update unit's read: ``layer``, ``parity``, ``block``; ``consume`` marks the block read.
    read_data : Out
        The ``P`` step sums of that block, this cycle (asynchronous read).
    load : In(data.StructLayout)
        ``valid``, ``address``, ``word``: a weight word written at run time.
    """

    #: Issue register, row product, weight read, weight register, products, read-modify-write: a
    #: step's ``end`` leaves on ``done`` ``LATENCY - 1`` cycles after its issue.
    LATENCY = 6

    def __init__(self, image, limits, acc_width):
        self.image, self.limits, self.acc_width = image, limits, acc_width
        cfg, P = image.config, image.lanes
        self.layers = len(image.layers)
        self.max_blocks = -(-limits.max_neurons // P)
        self.groups = -(-self.max_blocks // SPAN)
        super().__init__({
            "issue": In(data.StructLayout({"valid": 1, "end": 1, "layer": bits(self.layers), "parity": 1,
                                           "blocks": unsigned(bits(self.max_blocks + 1)),
                                           "base": unsigned(bits(limits.weight_words + 1)),
                                           "index": unsigned(bits(limits.max_fan_in)),
                                           "group": unsigned(bits(self.groups)),
                                           "amplitude": unsigned(cfg.spike_width)})),
            "done": Out(data.StructLayout({"valid": 1, "layer": bits(self.layers)})),
            "read": In(data.StructLayout({"consume": 1, "layer": bits(self.layers), "parity": 1,
                                          "block": unsigned(bits(self.max_blocks))})),
            "read_data": Out(unsigned(P * acc_width)),
            "load": In(data.StructLayout({"valid": 1, "address": unsigned(bits(limits.weight_words)),
                                          "word": unsigned(P * cfg.weight_width)})),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, P, AW, WB = self.image.config, self.image.lanes, self.acc_width, self.image.config.weight_width
        lane = lambda word, p, width: word[p * width:(p + 1) * width]
        issue, load = self.issue, self.load

        # -- stages a and b: the weight address ---------------------------------------------------------
        # The issue comes from the scheduler's choice among the queues: it is registered first, then
        # the row product j * blocks (a registered multiply), so that neither the choice nor the
        # multiply is on the weight memories' address path.
        sa, sb = Signal.like(issue), Signal.like(issue)
        offset = Signal(bits(self.limits.weight_words + 1))
        m.d.sync += [sa.eq(issue), sb.eq(sa), offset.eq(sa.index * sa.blocks)]

        # -- stage c: the weight reads ----------------------------------------------------------------
        # Words 4k .. 4k + 3 of the event, from word = base + j * blocks + 4k: the even memory holds
        # word 2a at a, the odd one word 2a + 1; whatever the parity of the first word, each gives two
        # consecutive entries. The run-time write shares the first read port of its memory (weights
        # are loaded between samples only), so that each memory maps onto one true-dual-port block RAM.
        init = pack_lanes(self.image.weights, WB)
        base = Signal(bits(self.limits.weight_words + SPAN * self.groups + 1))
        m.d.comb += base.eq(sb.base + offset + SPAN * sb.group)
        ports = []
        for parity, first_entry in ((0, (base + 1) >> 1), (1, base >> 1)):
            mem = memory.Memory(shape=unsigned(P * WB), depth=max(1, (self.limits.weight_words + 1 - parity) // 2),
                                init=init[parity::2])
            m.submodules[("weights_even", "weights_odd")[parity]] = mem
            first, second, write = mem.read_port(), mem.read_port(), mem.write_port()
            mine = load.valid & (load.address[0] == parity)
            m.d.comb += [first.addr.eq(Mux(mine, load.address >> 1, first_entry)), write.addr.eq(first.addr),
                         write.data.eq(load.word), write.en.eq(mine), second.addr.eq(first_entry + 1)]
            ports.append((first, second))
        (even0, even1), (odd0, odd1) = ports
        sc, sc_odd = Signal.like(issue), Signal()
        m.d.sync += [sc.eq(sb), sc_odd.eq(base[0])]

        # -- stage d: the four words, registered (the block RAM's output is slow on its own) ------------
        s1 = Signal.like(issue)
        words = [Signal(P * WB, name=f"word{q}") for q in range(SPAN)]
        m.d.sync += [s1.eq(sc), *(w.eq(v) for w, v in zip(words, (
            Mux(sc_odd, odd0.data, even0.data), Mux(sc_odd, even0.data, odd0.data),
            Mux(sc_odd, odd1.data, even1.data), Mux(sc_odd, even1.data, odd1.data))))]

        # -- stage e: the products -------------------------------------------------------------------
        product_shape = signed(WB + cfg.spike_width + 1)
        s2 = Signal.like(issue)
        products = [[Signal(product_shape, name=f"product{q}_{p}") for p in range(P)] for q in range(SPAN)]
        m.d.sync += s2.eq(s1)
        for q, word in enumerate(words):
            for p in range(P):
                m.d.sync += products[q][p].eq(lane(word, p, WB).as_signed() * s1.amplitude)

        # -- stage f: read-modify-write of the step sums ----------------------------------------------
        # One bank per (layer, parity, block mod 4); each with a port for this unit's update and one
        # for the update unit's read.
        fresh = Array(Array(Signal(self.max_blocks, name=f"fresh{layer}_{parity}", init=(1 << self.max_blocks) - 1)
                            for parity in range(2)) for layer in range(self.layers))
        in_layer = Cat(*(SPAN * s2.group + q < s2.blocks for q in range(SPAN)))
        read = self.read
        read_words = []
        for layer in range(self.layers):
            for parity in range(2):
                mine = s2.valid & ~s2.end & (s2.layer == layer) & (s2.parity == parity)
                for q in range(SPAN):
                    bank = memory.Memory(shape=unsigned(P * AW), depth=self.groups, init=[])
                    m.submodules[f"acc{layer}_{parity}_{q}"] = bank
                    write, old, out = bank.write_port(), bank.read_port(domain="comb"), bank.read_port(domain="comb")
                    first = fresh[layer][parity].bit_select(SPAN * s2.group + q, 1)
                    total = Cat(*((Mux(first, 0, lane(old.data, p, AW).as_signed()) + products[q][p])[:AW]
                                  for p in range(P)))
                    m.d.comb += [old.addr.eq(s2.group), write.addr.eq(s2.group), write.data.eq(total),
                                 write.en.eq(mine & in_layer[q]), out.addr.eq(read.block >> 2)]
                    read_words.append(((layer, parity, q), out.data))
        # A block no event wrote since it was last read holds an old step's sum: it reads as zero.
        unwritten = fresh[read.layer][read.parity].bit_select(read.block, 1)
        for (layer, parity, q), word in read_words:
            with m.If((read.layer == layer) & (read.parity == parity) & (read.block[:2] == q) & ~unwritten):
                m.d.comb += self.read_data.eq(word)

        # The fresh bits: set when the update unit reads a block, cleared by the first write of a step.
        for layer in range(self.layers):
            for parity in range(2):
                bits_ = fresh[layer][parity]
                written = s2.valid & ~s2.end & (s2.layer == layer) & (s2.parity == parity)
                consumed = read.consume & (read.layer == layer) & (read.parity == parity)
                cleared = Signal(self.max_blocks, name=f"written{layer}_{parity}")
                set_ = Signal(self.max_blocks, name=f"consumed{layer}_{parity}")
                with m.If(written):
                    m.d.comb += cleared.eq(in_layer << (SPAN * s2.group))
                with m.If(consumed):
                    m.d.comb += set_.eq(1 << read.block)
                m.d.sync += bits_.eq((bits_ & ~cleared) | set_)

        m.d.comb += [self.done.valid.eq(s2.valid & s2.end), self.done.layer.eq(s2.layer)]
        return m
