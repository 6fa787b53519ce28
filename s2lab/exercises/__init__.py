"""Exercises checked automatically, with data of the student's own.

Each checkable exercise of the notebooks is registered here under its key, ``"NN.k"`` (notebook NN, exercise k). An
exercise has two functions:

- ``make(seed)`` draws the student's own data (a crop position, a mask ratio, an array of scores, ...) from the
  student's seed, so two students get different numbers to find and copying an answer fails;
- ``judge(answer, data)`` recomputes the expected answer from the same data with the library and returns None when
  the answer is right, or a hint naming what is wrong (never the expected answer itself).

In a notebook::

    from s2lab import exercises
    mine = exercises.data("03.1")      # this student's data: a dict
    answer = ...                       # computed from mine
    exercises.check("03.1", answer)    # prints a pass, or a hint; returns True / False

The student is named by the environment variable ``S2LAB_STUDENT`` (a name or an id; it is hashed into the seed).
Unset, everyone is ``"student"`` (``DEFAULT_STUDENT``), so a course sets it per student, e.g.
``S2LAB_STUDENT=jdoe jupyter lab``. Conceptual exercises are not registered: they stay open questions.

The machinery (seed, registry, ``data``, ``check``) is ``s2lab.exercises.core``; the exercises of every two or three
notebooks are a module of their own, imported here so that every exercise is registered when the package is.
"""

from s2lab.exercises.core import (DEFAULT_STUDENT, REGISTRY, STUDENT_VARIABLE, Exercise, check, data, student_name,
                                  student_seed)
from s2lab.exercises import (change_and_fusion, classification, data_and_spectra, hyperspectral_and_ablations,
                             reconstruction, tokens_and_masks)

MODULES = (data_and_spectra, tokens_and_masks, reconstruction, classification, change_and_fusion,
           hyperspectral_and_ablations)  # they register their exercises on import

__all__ = ["DEFAULT_STUDENT", "REGISTRY", "STUDENT_VARIABLE", "Exercise", "check", "data", "student_name",
           "student_seed"]
