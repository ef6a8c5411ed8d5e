"""pymodbus's clients as the tests use them, with pymodbus's resource leaks mended."""

from __future__ import annotations

from pymodbus.client import ModbusUdpClient as _PymodbusUdpClient


class ModbusUdpClient(_PymodbusUdpClient):
    """pymodbus's sync UDP client, whose ``close()`` also closes its socket.

    pymodbus 3.12.1's ``close()`` only drops the socket (``self.socket = None``) and leaves it
    to the garbage collector: a ResourceWarning, which the suite's ``filterwarnings = error``
    turns into a failure of whichever test the collection happens in.
    """

    def close(self) -> None:
        """Close the socket, then let pymodbus forget it."""
        if self.socket is not None:
            self.socket.close()
        super().close()
