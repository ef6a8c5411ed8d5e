"""The example budget of the fuzz properties (``@pytest.mark.fuzz``).

The loaded Hypothesis profile decides it (the profiles are registered in tests/conftest.py).
Under the everyday profile ("default", or "ci" on top of it) each fuzz property runs its own
everyday budget, sized to what one of its examples costs, so that the suite stays quick. Under a
profile with another ``max_examples`` ("fuzz": 100 000, which ``nox -s fuzz`` selects with
``--hypothesis-profile=fuzz``) every fuzz property runs that many examples instead.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings

EVERYDAY = 300  # the everyday budget of a fuzz property whose examples are cheap


def fuzz_settings(everyday: int = EVERYDAY, **kwargs: Any) -> settings:
    """Settings of a fuzz property: ``everyday`` examples, or the loaded profile's budget.

    ``kwargs`` are further Hypothesis settings of the property (``stateful_step_count``, ...);
    the rest comes from the loaded profile.
    """
    loaded = settings.default.max_examples
    ordinary = settings.get_profile("default").max_examples
    return settings(max_examples=everyday if loaded == ordinary else loaded, **kwargs)
