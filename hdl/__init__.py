"""Amaranth gateware of the SRC accelerator: the neuron lane, the time-multiplexed core, the link and the board top."""
