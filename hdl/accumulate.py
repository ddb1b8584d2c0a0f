"""The accumulate unit: step sums ``acc[b] += W[b, j] * a`` for input events, four blocks of ``P`` neurons per cycle.

An event ``(j, a)`` of layer ``l`` costs ``ceil(blocks / 4)`` cycles: each cycle reads four weight
words, blocks ``4k .. 4k + 3`` of input ``j``, and adds ``4P`` products into the step sums. The four
words are consecutive in the weight array; the array is held as four memories by word address
modulo 4, each with one read port (a simple-dual-port block RAM), so that any four consecutive
words are one read from each. The step sums of every layer and step parity (a layer
accumulates step ``t + 1`` while step ``t`` waits for its update) are four banks of distributed
RAM, by block modulo 4 (four blocks written per cycle), addressed by (layer, parity, group), each
bank a memory per lane with its own copies of the address registers.

Pipeline (ten stages, each cut where nextpnr-ecp5 put a critical path): the issue registered twice,
the row product ``j * blocks`` (shift-and-add), the four word addresses, the weight reads, their outputs registered
(:class:`~hdl.chunked.ChunkedMemory`), the words chosen and registered, the products' first
additions (shift-and-add in LUTs, no DSP block), the products (with the old sums read beside
them), then the sums added and written back. An event right behind one to the same
blocks read its old sums before that write landed: it takes the sum being written (forwarding),
so back-to-back events never see a stale sum. A block's first write of a step overwrites instead
of adding: the update unit marks each block *consumed* when it reads it (``consume``), which
clears the sum for the next step without a clearing pass; a block that no event of a step wrote
reads as zero. Blocks past the layer's last (the tail of a last group of four) are neither
written nor marked.
"""

from amaranth import Array, C, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from .arith import add_all, add_pairwise, partial_products
from .chunked import ChunkedMemory
from .fanout import register_copies
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
        The ``P`` step sums of that block, :attr:`READ_LATENCY` cycles after the read.
    load : In(data.StructLayout)
        ``valid``, ``address``, ``word``: a weight word written at run time.
    """

    #: Issue registers (two), row product, word addresses, weight read, weight chunks registered,
    #: words chosen and registered, the products' first additions, products and old sums, the sums
    #: written: a step's ``end`` leaves on ``done`` ``LATENCY - 1`` cycles after its issue.
    LATENCY = 10
    #: The update unit's read registered, the banks read and their data registered.
    READ_LATENCY = 2

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

        # -- stages a, b and c: the weight addresses -----------------------------------------------------
        # The issue comes from the scheduler's choice among the queues, across the chip: it is
        # registered twice (a), then the row product j * blocks, shift-and-add (hdl.arith: no DSP
        # block), two of its levels, beside base + 4k + c for the four words c (b), then the four
        # word addresses (c), registered in the weight memories, a copy per chunk (hdl.chunked), so
        # that the memories' address is a register: the adders are off the block RAMs' path.
        arrived, sa, sb, sc = Signal.like(issue), Signal.like(issue), Signal.like(issue), Signal.like(issue)
        address_bits = bits(self.limits.weight_words + SPAN * self.groups + 1)
        corner = [Signal(address_bits, name=f"base_group{c}") for c in range(SPAN)]
        m.d.sync += [arrived.eq(issue), sa.eq(arrived), sb.eq(sa), sc.eq(sb),
                     *(corner[c].eq(sa.base + Cat(C(c, 2), sa.group)) for c in range(SPAN))]
        row_terms = add_pairwise(add_pairwise(partial_products(sa.blocks, sa.index, signed_weight=False)))
        offset = [Signal(term.shape(), name=f"row_product{n}") for n, term in enumerate(row_terms)]
        m.d.sync += [o.eq(term) for o, term in zip(offset, row_terms)]
        # Words 4k .. 4k + 3 of the event, from word = base + j * blocks + 4k: memory b holds the words
        # w = b (mod 4), at w >> 2, so any four consecutive words are one from each; memory b's is
        # word_at[3 - b] >> 2, and the first word's residue says how the four are rotated.
        # The entries are registered in the memories, a copy per chunk (hdl.chunked).
        word_at = [add_all([corner[c], *offset])[:address_bits] for c in range(SPAN)]
        entry = [word_at[SPAN - 1 - b] >> 2 for b in range(SPAN)]
        sc_rotation = Signal(2)
        m.d.sync += sc_rotation.eq(word_at[0][:2])

        # -- stages d and e: the weight reads ------------------------------------------------------------
        # One read port and one write port per memory (weights are written between samples only): a
        # simple-dual-port block RAM each. (Two read ports and a write port need a true-dual-port RAM
        # with the write sharing a read port; Yosys's ECP5 mapping doubles such a memory instead.)
        # Each is built of block-RAM-deep chunks, their outputs registered (stage e).
        init = pack_lanes(self.image.weights, WB)
        data_ = []
        for b in range(SPAN):
            mem = ChunkedMemory(P * WB, -(-(self.limits.weight_words - b) // SPAN), init[b::SPAN])
            m.submodules[f"weights{b}"] = mem
            m.d.comb += [mem.read_addr.eq(entry[b]), mem.write_addr.eq(load.address >> 2),
                         mem.write_data.eq(load.word), mem.write_en.eq(load.valid & (load.address[:2] == b))]
            data_.append(mem.read_data)
        sd, se = Signal.like(issue), Signal.like(issue)
        sd_rotation, se_rotation = Signal(2), Signal(2)
        m.d.sync += [sd.eq(sc), se.eq(sd), sd_rotation.eq(sc_rotation), se_rotation.eq(sd_rotation)]

        # -- stage f: the chunks' choice and the four words in order, registered -------------------------
        # The amplitude reaches six terms of every product (4P products): a copy per word shortens
        # that fan-out (hdl.fanout).
        sf = Signal.like(issue)
        words = [Signal(P * WB, name=f"word{q}") for q in range(SPAN)]
        amplitudes = register_copies(m, se.amplitude, SPAN, "amplitude")
        m.d.sync += sf.eq(se)
        for q in range(SPAN):
            m.d.sync += words[q].eq(Array(data_[(r + q) % SPAN] for r in range(SPAN))[se_rotation])

        # -- stage g: the products' first additions --------------------------------------------------------
        # Each product is a sum of its weight bits' terms (hdl.arith.partial_products: no DSP block),
        # the first level of the adder tree here, the rest in stage h.
        s1 = Signal.like(issue)
        m.d.sync += s1.eq(sf)
        halfway = [[] for _ in range(SPAN)]
        for q, word in enumerate(words):
            for p in range(P):
                level = add_pairwise(partial_products(lane(word, p, WB), amplitudes[q]))
                held = [Signal(term.shape(), name=f"term{q}_{p}_{k}") for k, term in enumerate(level)]
                m.d.sync += [h.eq(term) for h, term in zip(held, level)]
                halfway[q].append(held)

        # -- the step sums: four banks (block mod 4), each holding every layer's sums of both parities --
        # A bank's address is the fields (layer, parity, group) side by side: no adder on the path.
        # One write port (this unit) and two asynchronous read ports (this unit's and the update
        # unit's): distributed RAM. A "fresh" bit per entry: set when the update unit reads it (consumes
        # it), cleared by the first write of a step, which overwrites instead of adding.
        group_bits = len(issue.group)

        def address(layer, parity, group):
            padded = Signal(group_bits)      # a block index shifted right may be narrower than a group
            m.d.comb += padded.eq(group)
            return Cat(padded, parity, layer[:bits(self.layers)])

        # Each bank is a memory per lane, each addressed by its own copies of the address registers:
        # one copy per bank reached every cell of a 4P-lane-wide word, and routing that net took
        # 12.7 ns (the device's critical path, router2, at 63a017e).
        depth = self.layers << (group_bits + 1)
        banks = [[memory.Memory(shape=unsigned(AW), depth=depth, init=[]) for _ in range(P)] for _ in range(SPAN)]
        fresh = [Signal(depth, name=f"fresh{q}", init=(1 << depth) - 1) for q in range(SPAN)]
        for q, bank in enumerate(banks):
            for p, lane_memory in enumerate(bank):
                m.submodules[f"sums{q}_{p}"] = lane_memory

        # -- stage h: the products, and the old sums of the four blocks (read before the write of the
        # event ahead lands: that one is forwarded) -------------------------------------------------------
        product_shape = signed(WB + cfg.spike_width + 1)
        s2 = Signal.like(issue)
        products = [[Signal(product_shape, name=f"product{q}_{p}") for p in range(P)] for q in range(SPAN)]
        m.d.sync += s2.eq(s1)
        for q in range(SPAN):
            for p in range(P):
                terms = halfway[q][p]
                while len(terms) > 1:
                    terms = add_pairwise(terms)
                m.d.sync += products[q][p].eq(terms[0])
        # The sums' address in stages h and i, a copy per bank and lane (hdl.fanout); the bank's
        # bookkeeping (fresh bits, forwarding) uses its lane 0's.
        at_g = register_copies(m, address(sf.layer, sf.parity, sf.group), SPAN * P, "at_g")
        at_h = [Signal.like(a, name=f"at_h{k}") for k, a in enumerate(at_g)]    # each from its own copy
        m.d.sync += [h.eq(g) for h, g in zip(at_h, at_g)]
        at_g = [at_g[q * P:(q + 1) * P] for q in range(SPAN)]
        at_h = [at_h[q * P:(q + 1) * P] for q in range(SPAN)]
        writes_g = [s1.valid & ~s1.end & (SPAN * s1.group + q < s1.blocks) for q in range(SPAN)]
        # The write enables too, a copy per lane memory (a bank's one enable reached every cell of it:
        # the unit's critical path, 11.6 ns router2 at 8a81b2c); the bank's bookkeeping uses lane 0's.
        lane_writes = [register_copies(m, writes_g[q], P, f"writes{q}_") for q in range(SPAN)]
        writes_h = [lane_writes[q][0] for q in range(SPAN)]
        old = [Signal(P * AW, name=f"old{q}") for q in range(SPAN)]
        first, forward = [Signal(name=f"first{q}") for q in range(SPAN)], [Signal(name=f"forward{q}") for q in range(SPAN)]
        totals = [Signal(P * AW, name=f"total{q}") for q in range(SPAN)]
        # The update unit's read, registered as it arrives (it comes from across the chip), its bank
        # address once per bank (it reaches every distributed-RAM cell of a bank: hdl.fanout).
        read = Signal.like(self.read)
        m.d.sync += read.eq(self.read)
        arriving_at = address(self.read.layer, self.read.parity, self.read.block >> 2)
        read_at = Signal.like(arriving_at)
        m.d.sync += read_at.eq(arriving_at)
        bank_read_at = register_copies(m, arriving_at, SPAN * P, "read_at")
        read_words = []
        for q, bank in enumerate(banks):
            ports = [(mem.write_port(), mem.read_port(domain="comb"), mem.read_port(domain="comb")) for mem in bank]
            m.d.comb += [old_port.addr.eq(at_g[q][p]) for p, (_, old_port, _) in enumerate(ports)]
            m.d.sync += [old[q].eq(Cat(*(old_port.data for _, old_port, _ in ports))),
                         first[q].eq(fresh[q].bit_select(at_g[q][0], 1)),
                         forward[q].eq(writes_h[q] & (at_h[q][0] == at_g[q][0]))]

            # -- stage i: add the products, write back -------------------------------------------------
            previous = Mux(forward[q], totals[q], Mux(first[q], 0, old[q]))
            total = Cat(*((lane(previous, p, AW).as_signed() + products[q][p])[:AW] for p in range(P)))
            for p, (write, _, out_port) in enumerate(ports):
                m.d.comb += [write.addr.eq(at_h[q][p]), write.data.eq(lane(total, p, AW)),
                             write.en.eq(lane_writes[q][p]), out_port.addr.eq(bank_read_at[q * P + p])]
            m.d.sync += totals[q].eq(total)
            read_words.append(Cat(*(out_port.data for _, _, out_port in ports)))

            # The fresh bits: cleared by a write, set by the update unit's read.
            consumed = read.consume & (read.block[:2] == q)
            cleared, set_ = Signal(depth, name=f"cleared{q}"), Signal(depth, name=f"consumed{q}")
            with m.If(writes_h[q]):
                m.d.comb += cleared.eq(1 << at_h[q][0])
            with m.If(consumed):
                m.d.comb += set_.eq(1 << read_at)
            m.d.sync += fresh[q].eq((fresh[q] & ~cleared) | set_)

        # A block no event wrote since it was last read holds an old step's sum: it reads as zero.
        # The sums and that flag are registered apart, and the zeroing done after the registers: the
        # flag's lookup, then driving the zeroing of every bit of the word, were too long for one cycle.
        q_read = read.block[:2]
        raw, unwritten = Signal(P * AW), Signal()
        m.d.sync += [raw.eq(Array(read_words)[q_read]), unwritten.eq(Array(fresh)[q_read].bit_select(read_at, 1))]
        m.d.comb += self.read_data.eq(Mux(unwritten, 0, raw))

        m.d.comb += [self.done.valid.eq(s2.valid & s2.end), self.done.layer.eq(s2.layer)]
        return m
