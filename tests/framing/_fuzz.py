"""Hypothesis settings of the framing properties.

The normal run executes each property with 300 examples; the nox ``fuzz`` session selects
``-m fuzz`` and sets ``TRIO_MODBUS_FUZZ_EXAMPLES=100000``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

FUZZ_EXAMPLES = int(os.environ.get("TRIO_MODBUS_FUZZ_EXAMPLES", "300"))

fuzz_settings = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
