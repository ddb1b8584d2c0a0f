"""The device side's data: the packed model image the device holds and the frames of the link.

Needs neither torch nor Amaranth: numpy and the fixed-point configuration of :mod:`quant.fixedpoint`.
"""
