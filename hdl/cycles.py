"""The exact cycle count of :class:`hdl.core.SRCCore`, from the golden model's spikes.

The core's two units (accumulate and update) run at the same time and a sample's cost is set by
their schedule, so the count is not a formula: :class:`CoreSchedule` replays the scheduler of
:mod:`hdl.core` cycle by cycle (the same decisions, from the same registers, with each part's
latency), fed with what the data decides: the input events of each step and, per block of each
layer, how many of its neurons spike. The tests hold it equal to simulation, one sample at a time
and for samples streamed back to back.

The event-driven ideal of a sample is the busier unit's work: ``sum E(l) * ceil(nb(l) / 4)``
accumulate cycles (``E(l)`` events entering layer ``l``, a recurrent layer's own spikes of its
steps ``0 .. T-2`` included, four blocks of ``nb(l)`` per cycle) or
``sum nb(l)`` update cycles, over the steps. The *utilisation* of a stream of samples is that
ideal over the cycles each sample really costs. Pure Python (no Amaranth).
"""

from collections import deque

import numpy as np

__all__ = ["NEURON_LATENCY", "ACCUMULATE_LATENCY", "SPAN", "UPDATE_LATENCY", "STATE_SPACING", "READOUT_FLUSH", "READOUT_ENTRY",
           "ENCODER_PIPELINE", "ENCODER_BYTE_CYCLES", "FIFO_LATENCY", "queue_depth", "SampleProfile", "CoreSchedule", "sample_cycles",
           "stream_cycles", "golden_profiles", "golden_cycles", "encoder_lead_cycles"]

#: Pipeline depth of :class:`hdl.neuron.NeuronLane` (restated here to keep this module free of
#: Amaranth; a test holds each of these equal to its part's).
NEURON_LATENCY = 11
#: :attr:`hdl.accumulate.AccumulateUnit.LATENCY`: issue registers (two), row product, word addresses,
#: weight read, its output registered, words chosen, the products' first additions, products and old
#: sums, the sums written.
ACCUMULATE_LATENCY = 10
#: :attr:`hdl.update.UpdateUnit.LATENCY`: the issue register, the address register, the memory reads,
#: then the lane.
UPDATE_LATENCY = 3 + NEURON_LATENCY
#: :attr:`hdl.update.UpdateUnit.STATE_SPACING`: a layer's next step starts this many cycles after its last
#: (its blocks' states are read two cycles after their issue, the cycle after they were written).
STATE_SPACING = UPDATE_LATENCY - 1
#: :data:`hdl.accumulate.SPAN`: blocks an event adds to per cycle.
SPAN = 4
#: :attr:`hdl.readout.Readout.STAGES`: cycles the readout stays busy after its last class.
READOUT_FLUSH = 8
#: :attr:`hdl.readout.Readout.ENTRY`: cycles from an output block's exit to its class sums.
READOUT_ENTRY = 2
#: Stages of :class:`hdl.encoder.ImageEncoder`'s hash pipeline, and the cycles a word takes
#: through its event FIFO (``amaranth.lib.fifo.SyncFIFOBuffered``).
ENCODER_PIPELINE, FIFO_LATENCY = 7, 2
#: Cycles the image encoder spends on each byte of an IMAGE's pixel stream (take it, 8 bits).
ENCODER_BYTE_CYCLES = 9


def queue_depth(max_blocks):
    """Words of a :class:`~hdl.spike_queue.SpikeQueue`: a layer's step and the next one in flight."""
    return 2 * max_blocks + 2


class SampleProfile:
    """What the schedule of one sample depends on.

    Parameters
    ----------
    events : list of numpy.ndarray
        ``events[l][t]``: input events of layer ``l`` at step ``t``.
    block_spikes : list of numpy.ndarray
        ``block_spikes[l]`` of shape ``(T, nb(l))``: spiking neurons per block of layer ``l``.
    """

    def __init__(self, events, block_spikes):
        self.events, self.block_spikes = events, block_spikes
        self.n_steps = len(events[0])

    @classmethod
    def from_spikes(cls, image, amplitudes, spikes):
        """From one sample's ``(T, n_in)`` input and each layer's ``(T, n_out)`` spikes."""
        P = image.lanes
        events, block_spikes = [np.count_nonzero(amplitudes, axis=1)], []
        for k, entry in enumerate(image.layers):
            s = np.asarray(spikes[k]) != 0
            padded = np.zeros((len(s), entry.blocks * P), bool)
            padded[:, :s.shape[1]] = s
            block_spikes.append(padded.reshape(len(s), entry.blocks, P).sum(axis=2))
            if k + 1 < len(image.layers):
                events.append(s.sum(axis=1))
        return cls(events, block_spikes)

    def ideal(self, image):
        """The busier unit's cycles for this sample (see the module's description)."""
        blocks = [e.blocks for e in image.layers]
        accumulate = sum(int(np.sum(e)) * ((nb + SPAN - 1) // SPAN) for e, nb in zip(self.events, blocks))
        accumulate += sum(int(np.sum(self.block_spikes[l][:-1])) * ((blocks[l] + SPAN - 1) // SPAN)
                          for l in image.recurrent)
        return max(accumulate, self.n_steps * sum(blocks))


class CoreSchedule:
    """The scheduler of :class:`hdl.core.SRCCore`, cycle by cycle, on a stream of samples.

    Cycle 0 is the first cycle the first input word is offered; input words are offered every
    cycle the core can take them (the stream never stalls) and result words are taken as soon as
    they are offered. :meth:`run` returns, per sample, the cycle its last result word leaves.

    Parameters
    ----------
    image : firmware.image.DeviceImage
    max_blocks : int, optional
        Blocks of the largest layer the core is built for (sets the queue depth; default: the image's).
    """

    def __init__(self, image, max_blocks=None):
        self.blocks = [e.blocks for e in image.layers]
        self.recurrent = image.recurrent
        self.n_classes = image.n_classes
        self.depth = queue_depth(max_blocks or max(self.blocks))

    def run(self, profiles, starts=None):
        """Cycles at which each sample's last result word leaves.

        ``starts``, if given, holds per sample the earliest cycle its first input word is offered
        (by default each follows the previous sample's last word at once).
        """
        blocks, L, C, depth = self.blocks, len(self.blocks), self.n_classes, self.depth
        groups = [(nb + SPAN - 1) // SPAN for nb in blocks]
        # The input stream: per word (ready_from, is_end).
        words = deque()
        for k, profile in enumerate(profiles):
            offer = starts[k] if starts is not None else 0
            for t in range(profile.n_steps):
                words.extend([(offer, False)] * int(profile.events[0][t]))
                words.append((offer, True))
                offer = 0
        n_steps = profiles[0].n_steps
        # Spiking neurons per block of layer l, per step of the whole stream.
        spike_rows = [[row for profile in profiles for row in profile.block_spikes[l]] for l in range(L)]

        claimed, summed = [0] * L, [0] * L
        since, reserved = [STATE_SPACING] * L, [0] * L
        u_parity, u_row = [0] * L, [0] * L          # u_row: steps of layer l started so far (all samples)
        readout_busy = [False, False]
        queues = [None] + [deque() for _ in range(1, L)]   # words: [spikes left, last]
        own = {l: deque() for l in self.recurrent}         # a recurrent layer's own spikes, the same words
        own_reserved = {l: 0 for l in self.recurrent}
        owed = {l: False for l in self.recurrent}          # its own end of the previous step is to come
        a_step = {l: 0 for l in self.recurrent}
        finals = deque()                                  # (cycle, layer): a step's sums become final
        in_flight = deque()                               # (exit cycle, layer, block, row, parity)
        left = 0                                          # groups of the current event still to issue
        u_left, u_layer, u_block, u_job_row, u_job_parity = 0, 0, 0, 0, 0
        jobs = deque()                                    # readout jobs: (visible from, buffer, final)
        ro_state, ro_until, ro_job, ro_free = "idle", 0, None, 0
        done = []
        cycle = 0
        while len(done) < len(profiles):
            # The queues' fill levels as registered at the start of the cycle: a word taken this
            # cycle frees its room only from the next one.
            levels = [0] + [len(queues[l]) for l in range(1, L)]
            own_levels = {l: len(q) for l, q in own.items()}
            # -- the accumulate unit -----------------------------------------------------------------
            ended = None
            if left:
                left -= 1
            else:
                # The sources in the scheduler's order: deepest layer first, a recurrent layer's own
                # queue before the one below; a recurrent layer's step closes only once it owes nothing.
                chosen = None
                for l in reversed(range(L)):
                    if l in own and own[l] and claimed[l] < 2:
                        chosen = (l, own[l])
                        break
                    if l and queues[l] and claimed[l] < 2 and not (queues[l][0][0] == 0 and owed.get(l)):
                        chosen = (l, queues[l])
                        break
                    if not l and claimed[0] < 2 and words and words[0][0] <= cycle and not (words[0][1] and owed.get(0)):
                        chosen = (0, None)
                if chosen is not None:
                    l, queue = chosen
                    if queue is None:
                        _, is_end = words.popleft()
                        step_end = is_end
                        if not is_end:
                            left = groups[0] - 1
                    else:
                        head = queue[0]
                        step_end = head[0] == 0
                        if step_end:
                            queue.popleft()
                        else:
                            head[0] -= 1
                            if head[0] == 0 and not head[1]:
                                queue.popleft()
                            left = groups[l] - 1
                    if step_end and queue is not None and l in own and queue is own[l]:
                        owed[l] = False                   # the layer's own end: nothing issued
                    elif step_end:
                        ended = l
                        if l in owed:
                            owed[l] = a_step[l] != n_steps - 1
                            a_step[l] = (a_step[l] + 1) % n_steps
            final = None
            if finals and finals[0][0] == cycle:
                final = finals.popleft()[1]
            if ended is not None:
                finals.append((cycle + ACCUMULATE_LATENCY - 1, ended))

            # -- the update unit -----------------------------------------------------------------------
            started, finishing = None, None
            if u_left:
                issued = (u_layer, u_block, u_job_row, u_job_parity)
                u_left -= 1
                u_block += 1
                if u_left == 0:
                    finishing = u_layer
            else:
                issued = None
                for l in range(L):
                    if l + 1 < L:
                        room = depth - levels[l + 1] - reserved[l + 1] >= blocks[l]
                    else:
                        room = not readout_busy[u_parity[l]]
                    if l in own:
                        room = room and depth - own_levels[l] - own_reserved[l] >= blocks[l]
                    if summed[l] and since[l] >= STATE_SPACING and room:
                        started = l
                        break
                if started is not None:
                    l = started
                    issued = (l, 0, u_row[l], u_parity[l])
                    u_left, u_layer, u_block = blocks[l] - 1, l, 1
                    u_job_row, u_job_parity = u_row[l], u_parity[l]
                    if blocks[l] == 1:
                        finishing = l
            if issued is not None:
                in_flight.append((cycle + UPDATE_LATENCY, *issued))

            # -- exits: into the next queue or the readout ---------------------------------------------
            exiting = None
            if in_flight and in_flight[0][0] == cycle:
                _, l, b, row, parity = in_flight.popleft()
                exiting = l
                last = b == blocks[l] - 1
                if l in own and row % n_steps != n_steps - 1:
                    count = int(spike_rows[l][row][b])
                    if count or last:
                        own[l].append([count, last])
                if l + 1 < L:
                    count = int(spike_rows[l][row][b])
                    if count or last:
                        queues[l + 1].append([count, last])
                elif last:
                    jobs.append((cycle + 1 + READOUT_ENTRY, parity, row % n_steps == n_steps - 1))

            # -- the readout -----------------------------------------------------------------------------
            # A job reads its C classes, frees its buffer with the last, and (a sample's last step)
            # flushes its pipeline and sends the C result words; the next job may start the cycle
            # after the classes, once the integrators it reads are written (ro_free).
            cleared = None
            if ro_state == "idle":
                if jobs and jobs[0][0] <= cycle and cycle >= ro_free:
                    ro_job = jobs.popleft()
                    ro_state, ro_until = "classes", cycle + C
            elif ro_state == "classes":
                if cycle == ro_until:
                    cleared = ro_job[1]
                    if ro_job[2]:
                        ro_state, ro_until = "result", cycle + READOUT_FLUSH + C
                    else:
                        ro_state, ro_free = "idle", cycle + 1 + max(0, READOUT_FLUSH - 1 - C)
            elif cycle == ro_until:
                done.append(cycle)
                ro_state = "idle"

            # -- the registers -------------------------------------------------------------------------
            for l in range(L):
                if since[l] < STATE_SPACING:
                    since[l] += 1
            if started is not None:
                since[started] = 1
                if started in own:
                    own_reserved[started] += blocks[started]
                if started + 1 < L:
                    reserved[started + 1] += blocks[started]
                else:
                    readout_busy[u_parity[started]] = True
            if exiting is not None and exiting + 1 < L:
                reserved[exiting + 1] -= 1
            if exiting is not None and exiting in own:
                own_reserved[exiting] -= 1
            if ended is not None:
                claimed[ended] += 1
            if final is not None:
                summed[final] += 1
            if started is not None:
                summed[started] -= 1
            if finishing is not None:
                claimed[finishing] -= 1
                u_parity[finishing] ^= 1
                u_row[finishing] += 1
            if cleared is not None:
                readout_busy[cleared] = False
            cycle += 1
        return done


def sample_cycles(image, amplitudes, states):
    """``(cycles, ideal)`` of one sample alone on a core of ``image.lanes`` lanes, stream never stalling.

    ``cycles`` counts from the cycle the first input word is offered to the cycle the last
    result word leaves, both included. ``states`` are the golden model's recorded states of the
    sample (``states[k]["s"]`` of shape ``(T, n_out)``).
    """
    profile = SampleProfile.from_spikes(image, amplitudes, [st["s"] for st in states])
    last, = CoreSchedule(image).run([profile])
    return last + 1, profile.ideal(image)


def stream_cycles(image, profiles, max_blocks=None):
    """Cycles of ``profiles`` streamed back to back: ``(total, per_sample)``.

    ``total`` counts from the first input word to the last result word, both included;
    ``per_sample`` the cycles between consecutive samples' last result words (the first from the
    start): in steady state, what each sample costs.
    """
    done = CoreSchedule(image, max_blocks).run(profiles)
    return done[-1] + 1, np.diff([-1] + done)


def golden_profiles(network, image, samples):
    """Run ``samples`` ``(n, T, n_in)`` on the golden model as one batch; their :class:`SampleProfile` s.

    Returns ``(profiles, result)``, ``result`` the batch's :class:`quant.golden.GoldenResult`
    (states recorded). This is the one place that goes from samples to what the schedule needs.
    """
    from quant import golden

    samples = np.asarray(samples)
    result = golden.run(network, samples.transpose(1, 0, 2), record=True)
    amplitudes = golden.to_amplitudes(samples, network.config)
    profiles = [SampleProfile.from_spikes(image, amplitudes[k], [st["s"][:, k] for st in result.states])
                for k in range(len(samples))]
    return profiles, result


def golden_cycles(network, image, amplitudes):
    """Run one sample ``(T, n_in)`` on the golden model and count its cycles alone on ``image``'s core.

    Returns ``(cycles, ideal, result)``, ``result`` the :class:`quant.golden.GoldenResult` (states
    recorded) of the sample as a batch of one.
    """
    (profile,), result = golden_profiles(network, image, np.asarray(amplitudes)[None])
    last, = CoreSchedule(image).run([profile])
    return last + 1, profile.ideal(image), result


def encoder_lead_cycles(encoding, stream_bytes, listed, never, n_steps):
    """Cycles from :class:`hdl.encoder.ImageEncoder`'s ``start`` to its first event word, with a byte
    of the pixel stream offered every cycle.

    ``listed`` pixels are non-zero, ``never`` of them never spike (latency coding). The image
    costs this once, before its first step; afterwards the encoder keeps ahead of the core
    (``tests/hdl/test_device.py`` checks that it stops the shipped core on at most one cycle in
    a thousand).

    * rate coding, when the first listed pixel spikes at step 0: the pixel stream
      (``ENCODER_BYTE_CYCLES`` per byte: it is taken, then its 8 bits are decoded one per cycle), the
      end-of-stream check (1), the list's last write landing (1), the key ``fmix32(seed)`` issued
      (1) and through the hash pipeline (``ENCODER_PIPELINE``), the first pixel issued (1) and
      through it, and the FIFO (2);
    * latency coding: the pixel stream, the check and the last write (2), clearing the per-step counts (T), counting (4
      cycles per listed pixel, 3 for one that never spikes, 1 to finish), the prefix sums (2T), the
      scatter (as the count), the first read of the sorted list, registered (3), and the FIFO (2).
    """
    if encoding == "rate":
        return ENCODER_BYTE_CYCLES * stream_bytes + 2 + 1 + ENCODER_PIPELINE + 1 + ENCODER_PIPELINE + FIFO_LATENCY
    if encoding == "latency":
        per_pass = 4 * listed - never + 1
        return ENCODER_BYTE_CYCLES * stream_bytes + 2 + n_steps + per_pass + 2 * n_steps + per_pass + 3 + FIFO_LATENCY
    raise ValueError(f"unknown encoding {encoding!r}; expected 'rate' or 'latency'")
