"""The exact cycle count of :class:`hdl.core.SRCCore` for a sample, from the golden model's spikes.

The sequencer's phases per step (``nb(l)`` blocks of layer ``l``, ``E(l)`` events entering
layer ``l``, ``Z(l)`` blocks of layer ``l`` holding spikes)::

    input            1 + E(0)*nb(0)       events back to back; the end word rides the last cycle
    drain            1
    update l         nb(l) + 7            block pipeline, then its drain
    scan l >= 1      2*Z(l-1) + E(l)*nb(l) + 1

The readout runs beside the next step for ``C*G + 3`` cycles; the output layer's update waits
for it if it is still running, and after the last step the result leaves after it, ``C``
words. The event-driven ideal is ``sum E(l)*nb(l) + sum nb(l)``: one cycle per event per
block, plus one per block update. Pure Python (no Amaranth).
"""

import numpy as np

__all__ = ["NEURON_LATENCY", "READOUT_FLUSH", "DRAIN", "ENCODER_PIPELINE", "step_profile", "sample_cycles",
           "golden_cycles", "encoder_lead_cycles"]

#: Pipeline depth of :class:`hdl.neuron.NeuronLane` (restated here to keep this module free of
#: Amaranth; a test holds the two equal).
NEURON_LATENCY = 5
#: Cycles the readout stays busy after its last spike read: the read, then its three update
#: stages (:class:`hdl.core.SRCCore` builds that many flush states from it).
READOUT_FLUSH = 3

#: Cycles from a layer's last block issue to the next phase (memory read, lane latency, check).
DRAIN = 2 + NEURON_LATENCY
#: Stages of :class:`hdl.encoder.ImageEncoder`'s hash pipeline (a test holds the two equal), and the
#: cycles a word takes through its event FIFO (``amaranth.lib.fifo.SyncFIFOBuffered``).
ENCODER_PIPELINE, FIFO_LATENCY = 4, 2


def step_profile(image, amplitudes, states):
    """Per step and layer: events entering the layer and blocks of the layer below holding spikes.

    ``amplitudes`` is one sample's ``(T, n_in)`` input; ``states`` the golden model's recorded
    states of that sample (``states[k]["s"]`` of shape ``(T, n_out)``).
    """
    events = [np.count_nonzero(amplitudes, axis=1)]
    nonzero_blocks = [np.zeros(len(amplitudes), np.int64)]
    for k in range(1, len(image.layers)):
        s = np.asarray(states[k - 1]["s"])
        events.append(np.count_nonzero(s, axis=1))
        padded = np.zeros((len(s), image.layers[k - 1].blocks * image.lanes), bool)
        padded[:, :s.shape[1]] = s != 0
        nonzero_blocks.append(padded.reshape(len(s), -1, image.lanes).any(axis=2).sum(axis=1))
    return events, nonzero_blocks


def sample_cycles(image, amplitudes, states):
    """``(cycles, ideal)`` of one sample on a core of ``image.lanes`` lanes, stream never stalling.

    ``cycles`` counts from the cycle the first input word is offered to the cycle the last
    result word leaves, both included.
    """
    events, nonzero_blocks = step_profile(image, amplitudes, states)
    blocks = [e.blocks for e in image.layers]
    n_layers, readout = len(blocks), image.n_classes * image.config.params.group_size + READOUT_FLUSH
    now, readout_free, ideal = 0, 0, 0
    for t in range(len(amplitudes)):
        now += 1 + int(events[0][t]) * blocks[0] + 1            # input, drain
        for k in range(n_layers):
            if k:
                now += 2 * int(nonzero_blocks[k][t]) + int(events[k][t]) * blocks[k] + 1
            if k == n_layers - 1:
                now = max(now, readout_free + 1)                # decided a cycle ahead, once the readout is idle
            now += blocks[k] + DRAIN
            ideal += int(events[k][t]) * blocks[k] + blocks[k]
        readout_free = now + readout                            # busy from the next cycle on
    now = readout_free + 1 + image.n_classes                    # wait, then the result words
    return now, ideal


def golden_cycles(network, image, amplitudes):
    """Run one sample ``(T, n_in)`` on the golden model and count its cycles on ``image``'s core.

    Returns ``(cycles, ideal, result)``, ``result`` the :class:`quant.golden.GoldenResult` (states
    recorded) of the sample as a batch of one.
    """
    from quant import golden

    amplitudes = np.asarray(amplitudes)
    result = golden.run(network, amplitudes[:, None, :], record=True)
    cycles, ideal = sample_cycles(image, golden.to_amplitudes(amplitudes, network.config),
                                  [{"s": st["s"][:, 0]} for st in result.states])
    return cycles, ideal, result


def encoder_lead_cycles(encoding, token_bytes, listed, never, n_steps):
    """Cycles from :class:`hdl.encoder.ImageEncoder`'s ``start`` to its first event word, with a token
    byte offered every cycle.

    ``listed`` pixels are non-zero, ``never`` of them never spike (latency coding). The image
    costs this once, before its first step; afterwards the encoder keeps ahead of the core
    (``tests/hdl/test_device.py`` checks that the shipped core never waits for it).

    * rate coding, when the first listed pixel spikes at step 0: the tokens (one cycle each), the
      end-of-tokens check (1), the key ``fmix32(seed)`` issued (1) and through the hash pipeline
      (``ENCODER_PIPELINE``), the first pixel issued (1) and through it, and the FIFO (2);
    * latency coding: the tokens and the check (1), clearing the per-step counts (T), counting (4
      cycles per listed pixel, 3 for one that never spikes, 1 to finish), the prefix sums (2T), the
      scatter (as the count), the first read of the sorted list (2) and the FIFO (2).
    """
    if encoding == "rate":
        return token_bytes + 1 + 1 + ENCODER_PIPELINE + 1 + ENCODER_PIPELINE + FIFO_LATENCY
    if encoding == "latency":
        per_pass = 4 * listed - never + 1
        return token_bytes + 1 + n_steps + per_pass + 2 * n_steps + per_pass + 2 + FIFO_LATENCY
    raise ValueError(f"unknown encoding {encoding!r}; expected 'rate' or 'latency'")
