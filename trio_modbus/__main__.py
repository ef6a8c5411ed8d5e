"""``python -m trio_modbus serve``: the same as the ``trio-modbus`` command."""

import sys

from trio_modbus.cli import main

sys.exit(main())
