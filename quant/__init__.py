"""Training and quantization of Spiking Recurrent Cell (SRC) networks.

This package holds the first two stages of the toolkit: the float PyTorch
models (:mod:`quant.model`) and their training (:mod:`quant.train`), and the
fixed-point specification of the hardware (the fixed-point configuration,
the lookup tables and the bit-exact golden model).

Importing this package imports neither torch nor numpy; the modules that
need them import them themselves, so that :mod:`firmware` can use the
fixed-point configuration without torch.
"""
