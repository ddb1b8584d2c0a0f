"""Turning spike tensors into core stimulus, and golden-model runs into the trace the core must produce.

Independent of the simulator: the Amaranth testbenches and the cocotb benches both use it.
"""

import numpy as np

from quant import golden

__all__ = ["step_events", "expected_trace", "compare_trace", "ideal_cycles"]


def step_events(amplitudes):
    """Per step, the list of ``(index, amplitude)`` input events in ascending index order.

    ``amplitudes`` is one sample's ``(T, n_in)`` integer amplitudes.
    """
    return [[(int(j), int(row[j])) for j in np.flatnonzero(row)] for row in amplitudes]


def expected_trace(network, image, amplitudes):
    """What the core's trace port must show for one sample: ``{(t, layer, block): [(i, h, hs, s) per lane]}``.

    Padding lanes (past a layer's ``n_out``) are left out of the comparison (``None``).
    """
    result = golden.run(network, amplitudes[:, None, :], record=True)
    expected = {}
    for k, (entry, st) in enumerate(zip(image.layers, result.states)):
        for t in range(amplitudes.shape[0]):
            for b in range(entry.blocks):
                lanes = []
                for p in range(image.lanes):
                    n = b * image.lanes + p
                    lanes.append(None if n >= entry.n_out else
                                 (int(st["i"][t, 0, n]), int(st["h"][t, 0, n]), int(st["h_s"][t, 0, n]), int(st["s"][t, 0, n])))
                expected[(t, k, b)] = lanes
    return expected, result


def compare_trace(expected, observed):
    """Mismatches between an expected and an observed trace, as readable strings (empty when equal).

    ``observed`` maps ``(t, layer, block)`` to per-lane ``(i, h, hs, s)``; each key must appear exactly once.
    """
    problems = []
    missing = sorted(set(expected) - set(observed))
    extra = sorted(set(observed) - set(expected))
    if missing:
        problems.append(f"{len(missing)} blocks never traced, first {missing[:3]}")
    if extra:
        problems.append(f"{len(extra)} unexpected blocks, first {extra[:3]}")
    for key in sorted(set(expected) & set(observed)):
        for p, (want, got) in enumerate(zip(expected[key], observed[key])):
            if want is not None and tuple(want) != tuple(got):
                problems.append(f"t={key[0]} layer={key[1]} block={key[2]} lane={p}: "
                                f"expected (i, h, hs, s) = {want}, got {tuple(got)}")
    return problems


def ideal_cycles(image, spike_counts_per_step):
    """The event-driven ideal of one sample: sum over layers and steps of ``events x blocks``.

    ``spike_counts_per_step[k][t]`` is the number of events entering layer ``k`` at step ``t``.
    """
    return sum(int(np.sum(counts)) * entry.blocks for entry, counts in zip(image.layers, spike_counts_per_step))
