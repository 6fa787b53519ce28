"""The machinery of the checked exercises: the student's seed, the registry, ``data`` and ``check``.

The exercises themselves live in the other modules of ``s2lab.exercises``, one per pair of notebooks; each registers
its exercises here with ``register``. ``close`` and ``same_band`` build the hints the judges return.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
from dataclasses import dataclass
from typing import Any, Callable

STUDENT_VARIABLE = "S2LAB_STUDENT"
DEFAULT_STUDENT = "student"


def student_name() -> str:
    """The student's name or id: ``$S2LAB_STUDENT`` stripped, or ``DEFAULT_STUDENT`` when unset or blank."""
    return os.environ.get(STUDENT_VARIABLE, "").strip() or DEFAULT_STUDENT


def student_seed(name: str | None = None) -> int:
    """The student's seed, in [0, 2**31): the first 4 bytes of the SHA-256 of the name (default ``student_name()``)."""
    name = student_name() if name is None else str(name)
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "big") >> 1


@dataclass(frozen=True)
class Exercise:
    """One checkable exercise: ``make(seed) -> dict`` draws the data, ``judge(answer, data) -> str | None`` checks."""

    key: str
    title: str
    make: Callable[[int], dict]
    judge: Callable[[Any, dict], str | None]


REGISTRY: dict[str, Exercise] = {}


def register(key: str, title: str, make: Callable[[int], dict], judge: Callable[[Any, dict], str | None]) -> None:
    REGISTRY[key] = Exercise(key, title, make, judge)


def _exercise(key: str) -> Exercise:
    if key not in REGISTRY:
        raise KeyError(f"no checkable exercise {key!r}; expected one of {', '.join(sorted(REGISTRY))}")
    return REGISTRY[key]


def rng_for(key: str, seed: int) -> random.Random:
    """One stream per (exercise, student), so the exercises of a student are independent of each other."""
    return random.Random(f"{key}:{int(seed)}")


def data(key: str, seed: int | None = None) -> dict:
    """The data of exercise ``key`` for the student of ``seed`` (default ``student_seed()``)."""
    return _exercise(key).make(student_seed() if seed is None else int(seed))


def check(key: str, answer: Any, seed: int | None = None) -> bool:
    """Check ``answer`` to exercise ``key`` for the student of ``seed``: print a pass or a hint, return True on a pass.

    ``answer`` None (or ``...``) means not answered yet: a reminder is printed, nothing is raised.
    """
    exercise = _exercise(key)
    if answer is None or answer is Ellipsis:
        print(f"[{key}] not answered yet: set `answer` and run the cell again.")
        return False
    who = f"student {student_name()!r}" if seed is None else f"seed {int(seed)}"
    try:
        hint = exercise.judge(answer, exercise.make(student_seed() if seed is None else int(seed)))
    except (TypeError, ValueError, IndexError, KeyError) as error:
        hint = f"the answer has the wrong form ({type(error).__name__}: {error})"
    if hint is None:
        print(f"[{key}] pass: {exercise.title} ({who}).")
        return True
    print(f"[{key}] not yet: {hint}.")
    return False


def close(value: Any, expected: float, tolerance: float, what: str) -> str | None:
    """None when ``value`` is within ``tolerance`` of ``expected``; else a hint that says too high or too low."""
    value = float(value)
    if not math.isfinite(value):
        return f"{what} is not a finite number"
    if abs(value - expected) <= tolerance:
        return None
    return f"{what} is too {'high' if value > expected else 'low'} (off by more than {tolerance:g})"


def same_band(value: Any, expected: str, what: str) -> str | None:
    """None when ``value`` names the band ``expected`` (e.g. "B8A"); else a hint naming the wrong band."""
    if str(value).upper() == expected.upper():
        return None
    return f"{what} is not {value!r}"
