"""Links that open the explorer with its state preset: the page's URL query, read and checked, without panel.

``http://localhost:5006/explorer?tab=reconstruct&ratio=0.9&strategy=tube`` opens the Mask and reconstruct tab at
mask ratio 0.9 under tube masking. ``QUERY`` names the query key of each ``Explorer`` parameter a link can set;
``read_query`` reads a query string into a ``Preset``: the values it takes, and one line per key it refuses (a value
out of range or not among the choices, a key the explorer does not read). So a bad link still opens the page, with
the default of each refused key, and says why. Values are checked against the parameters' own bounds and choices:
a link takes exactly what the widgets can set.

Panel's ``pn.state.location.sync(state, QUERY)`` keeps the URL in step with the state once the page is open
(``s2lab.explorer.panes.keep_url_in_step``); it is not used to read the link, because it sets every key in one
``param.update`` and drops them all when one value is refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import param

# Explorer parameter -> its query key, in the order the URL lists them.
QUERY = {"tab": "tab", "mask_ratio": "ratio", "strategy": "strategy", "seed": "seed", "threshold": "threshold",
         "patch_size": "p", "bands_per_token": "s", "composite": "composite"}


@dataclass(frozen=True)
class Preset:
    """What a link's query sets.

    Attributes:
        values: parameter name -> value, for each key that was taken (typed: 0.9, not "0.9").
        problems: one line per key refused, saying what was wrong, what was expected and what is shown instead.
    """

    values: dict[str, object] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        """The problems as Markdown for the app's message area ("" when there are none)."""
        if not self.problems:
            return ""
        return "**Not taken from the link:**\n\n" + "\n".join(f"- {p}" for p in self.problems)


def _shown(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _read(parameter: param.Parameter, text: str) -> object:
    """``text`` as a value of ``parameter``.

    Raises:
        ValueError: the value it is not, as "expected ..." (the parameter's choices or bounds).
    """
    if isinstance(parameter, param.Selector):
        for choice in parameter.objects:
            if str(choice).lower() == text.strip().lower():
                return choice
        raise ValueError("expected one of " + ", ".join(str(c) for c in parameter.objects))
    whole = isinstance(parameter, param.Integer)
    low, high = parameter.bounds or (None, None)
    span = (f" from {_shown(low)} to {_shown(high)}" if low is not None and high is not None
            else f" of at least {_shown(low)}" if low is not None
            else f" of at most {_shown(high)}" if high is not None else "")
    expected = ValueError(f"expected {'a whole number' if whole else 'a number'}{span}")
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        raise expected from None
    if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
        raise expected
    return value


def read_query(query: str, state: param.Parameterized, keys: Mapping[str, str] = QUERY) -> Preset:
    """Read a URL query (``?ratio=0.9&strategy=tube``, with or without its ``?``) into the values it sets on ``state``.

    Every key is read on its own: a refused one does not stop the others. A key given twice counts once, its last
    value. Matching a choice ignores case (``strategy=Tube``).

    Args:
        query: the URL's query string, percent-encoded as in the address bar.
        state: the object the values are for (an ``Explorer``): its parameters give the choices and bounds, and its
            current values are the defaults a refused key leaves in place.
        keys: parameter name -> query key (``QUERY``).

    Returns:
        The values taken and the problems found.
    """
    by_key = {key: name for name, key in keys.items()}
    values, problems = {}, []
    for key, text in dict(parse_qsl(query.removeprefix("?"), keep_blank_values=True)).items():
        name = by_key.get(key)
        if name is None:
            problems.append(f"`{key}={text}`: not a key the explorer reads (it reads {', '.join(keys.values())})")
            continue
        try:
            values[name] = _read(state.param[name], text)
        except ValueError as err:
            problems.append(f"`{key}={text}`: {err}; showing the default, {_shown(getattr(state, name))}")
    return Preset(values=values, problems=tuple(problems))
