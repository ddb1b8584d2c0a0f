"""The cycle model's own cases, computed by hand; its equality with simulation is in test_core.py."""

from types import SimpleNamespace

import numpy as np

from hdl import cycles
from hdl.accumulate import SPAN, AccumulateUnit
from hdl.cycles import CoreSchedule, SampleProfile, sample_cycles
from hdl.neuron import NeuronLane
from hdl.readout import Readout
from hdl.update import UpdateUnit


def test_the_model_knows_each_parts_latency():
    assert cycles.NEURON_LATENCY == NeuronLane.LATENCY
    assert cycles.ACCUMULATE_LATENCY == AccumulateUnit.LATENCY and cycles.SPAN == SPAN
    assert cycles.UPDATE_LATENCY == UpdateUnit.LATENCY
    assert cycles.STATE_SPACING == UpdateUnit.STATE_SPACING
    assert cycles.READOUT_FLUSH == Readout.STAGES and cycles.READOUT_ENTRY == Readout.ENTRY


def _image(blocks, n_classes=10):
    return SimpleNamespace(layers=[SimpleNamespace(blocks=b) for b in blocks], n_classes=n_classes, lanes=4, recurrent=())


def test_one_layer_one_step_by_hand():
    """One layer of 2 blocks, one step with one event, 10 classes.

    cycle 0 the event (one group of four), 1 the end, which leaves the ten-stage accumulate
    pipeline at 10 (its sums final) and is counted at 11; the update issues blocks 0 and 1 at 11 and
    12, they leave the 14-stage update pipeline at 25 and 26; block 1's class sums are added two
    cycles later (27), the readout takes the job at 29, runs the classes 30-39 and its flush
    40-47, and sends the 10 result words 48-57.
    """
    profile = SampleProfile([np.array([1])], [np.array([[0, 0]])])
    assert CoreSchedule(_image([2])).run([profile]) == [57]


def test_two_samples_of_one_layer_by_hand():
    """The second sample overlaps the first one's readout.

    Sample 0: event 0, end 1 (as above, result words 48-57). Sample 1: its end at 2 (no events),
    final at 11, counted at 12; the update starts it at 24 (13 cycles after 11: block 0's state,
    written at 25, is read at 26), blocks leave at 38 and 39; the job (ready at 42) waits for the
    readout (free at 58), classes 59-68, flush 69-76, words 77-86.
    """
    profiles = [SampleProfile([np.array([1])], [np.array([[0, 0]])]),
                SampleProfile([np.array([0])], [np.array([[0, 0]])])]
    assert CoreSchedule(_image([2])).run(profiles) == [57, 86]


def test_ideal_is_the_busier_unit():
    # Two layers of 9 and 5 blocks, two steps: 4 and 2 events into layer 0, 6 and 0 into layer 1.
    profile = SampleProfile([np.array([4, 2]), np.array([6, 0])], [np.zeros((2, 9)), np.zeros((2, 5))])
    accumulate = (4 + 2) * 3 + (6 + 0) * 2      # ceil(9/4) = 3 cycles per event, ceil(5/4) = 2
    update = 2 * (9 + 5)
    assert profile.ideal(_image([9, 5])) == max(accumulate, update) == 30


def test_profile_counts_spikes_per_block():
    image = _image([2, 1])
    amplitudes = np.array([[256, 0, 256], [0, 0, 0]])
    spikes = [np.array([[1, 0, 0, 1, 1], [0, 0, 0, 0, 0]]), np.array([[0, 1, 0], [1, 0, 0]])]
    profile = SampleProfile.from_spikes(image, amplitudes, spikes)
    assert profile.events[0].tolist() == [2, 0] and profile.events[1].tolist() == [3, 0]
    assert profile.block_spikes[0].tolist() == [[2, 1], [0, 0]]     # lanes 0-3, then lane 4 (of 4 lanes)
    assert profile.block_spikes[1].tolist() == [[1], [1]]
    assert sample_cycles(image, amplitudes, [{"s": s} for s in spikes])[1] == profile.ideal(image)
