"""The host side: transports to the device, the :class:`~host.device.Device` driver, and inference."""
