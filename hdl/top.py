"""The device behind a UART: the top level of the board design and of the link simulations."""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect

from .device import SRCDevice
from .uart import UARTRx, UARTTx

__all__ = ["UARTDevice"]


class UARTDevice(wiring.Component):
    """:class:`~hdl.device.SRCDevice` with an 8N1 UART on two pins.

    Parameters
    ----------
    image : firmware.image.DeviceImage
        The network baked in.
    divisor : int
        Clock cycles per bit (:func:`hdl.uart.divisor`).
    limits, max_payload, timeout
        As for :class:`~hdl.device.SRCDevice`.

    Members
    -------
    rx : In(1)
        From the host (idle high).
    tx : Out(1)
        To the host.
    overrun : Out(1)
        Sticky: a byte arrived while the previous one was still waiting (the host ignored the
        one-request-one-reply flow control).
    """

    def __init__(self, image, divisor, **kwargs):
        self.divisor = divisor
        self.device = SRCDevice(image, **kwargs)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "overrun": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.device = self.device
        m.submodules.uart_rx = uart_rx = UARTRx(self.divisor)
        m.submodules.uart_tx = uart_tx = UARTTx(self.divisor)
        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx)]
        connect(m, uart_rx.data, self.device.rx)
        connect(m, self.device.tx, uart_tx.data)
        with m.If(uart_rx.overrun):
            m.d.sync += self.overrun.eq(1)
        return m
