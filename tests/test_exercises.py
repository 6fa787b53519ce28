"""s2lab.exercises: the student's seed, the per-student data, and checks that pass right answers, reject wrong ones
with a hint that does not give the answer away, and tell an unanswered exercise from a malformed answer."""

import collections
import json
from pathlib import Path

import numpy as np
import pytest

from s2lab import exercises

ROOT = Path(__file__).resolve().parents[1]
NAMES = [f"student-{i}" for i in range(8)]


def test_student_seed_hashes_the_name_from_the_environment(monkeypatch):
    monkeypatch.delenv(exercises.STUDENT_VARIABLE, raising=False)
    assert exercises.student_name() == exercises.DEFAULT_STUDENT
    default = exercises.student_seed()
    monkeypatch.setenv(exercises.STUDENT_VARIABLE, "  jdoe ")
    assert exercises.student_name() == "jdoe"
    assert exercises.student_seed() == exercises.student_seed("jdoe") != default
    assert 0 <= exercises.student_seed() < 2**31
    assert len({exercises.student_seed(name) for name in NAMES}) == len(NAMES)


@pytest.mark.parametrize("key", sorted(exercises.REGISTRY))
def test_students_get_different_data(key):
    seen = {repr(exercises.data(key, exercises.student_seed(name))) for name in NAMES}
    assert len(seen) >= 2, f"{key}: every student gets the same data"
    assert exercises.data(key, 7).keys() == exercises.data(key, 8).keys()


def _answers(d: dict) -> dict:
    """Right answers computed here by hand for the cheap exercises (the solution scripts cover all of them)."""
    import math

    return {
        "03.3": lambda: (6 * d["D"], min(side for side in range(d["p"], 4000, d["p"])
                                         if round(d["G"] * (side // d["p"]) ** 2 * (1 - d["ratio"])) >= 6 * d["D"])),
        "07.1": lambda: (float(np.mean([_ap(d["scores"][:, k], d["truth"][:, k]) for k in range(4)])),
                         _ap(d["scores"].ravel(), d["truth"].ravel())),
        "02.1": lambda: [(p, s) for p in d["patch_sizes"] if d["H"] % p == 0 for s in range(1, d["C"] + 1)
                         if d["low"] <= math.ceil(d["C"] / s) * (d["H"] // p) ** 2 <= d["high"]],
        "06.4": lambda: _confusion_reading(d),
        "10.3": lambda: _sensor_tokens(d),
        "11.3": lambda: _mean_abundances(d),
    }


def _confusion_reading(d: dict) -> tuple:
    """(accuracy, (true, predicted) of the largest off-diagonal count, class of lowest precision), by hand."""
    pairs = collections.Counter(zip(d["truth"].tolist(), d["logits"].argmax(axis=1).tolist()))
    right = sum(n for (t, p), n in pairs.items() if t == p)
    true, predicted = max((pair for pair in pairs if pair[0] != pair[1]), key=pairs.get)
    called = collections.Counter(d["logits"].argmax(axis=1).tolist())
    precision = {k: pairs[(k, k)] / called[k] for k in called}
    least = min(precision, key=precision.get)
    return right / len(d["truth"]), (d["classes"][true], d["classes"][predicted]), d["classes"][least]


def _sensor_tokens(d: dict) -> tuple:
    """(G, L, code similarity of the nearest groups wholly on either side of the removed window) of a 10.3 sensor, by
    hand with numpy."""
    import math

    low, high = d["removed_nm"]
    nm = d["first_nm"] + d["step_nm"] * np.arange(d["channels"])
    nm = nm[(nm < low) | (nm > high)]  # (C,) the kept bands
    s = d["s"]
    G = math.ceil(len(nm) / s)
    groups = [nm[i:i + s] for i in range(0, len(nm), s)]  # G runs of kept bands
    means = np.array([group.mean() for group in groups])  # (G,)
    angles = (means / 100.0)[:, None] / 10000 ** (np.arange(8) * 2 / 16)[None]  # (G, 8): D_spec = 16
    codes = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)  # (G, 16)
    below = max(g for g, group in enumerate(groups) if group.max() < low)
    above = min(g for g, group in enumerate(groups) if group.min() > high)
    a, b = codes[below], codes[above]
    return G, G * (d["tile"] // d["p"]) ** 2, float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def _mean_abundances(d: dict) -> dict:
    """Mean fully constrained abundances of the window by projected gradient (sorting projection onto the simplex)."""
    from s2lab.data.hyperspectral import open_hyperspectral

    hs = open_hyperspectral()
    rows, cols = slice(d["row"], d["row"] + d["size"]), slice(d["col"], d["col"] + d["size"])
    Y = hs.cube.values[::d["step"], rows, cols].reshape(-1, d["size"] ** 2).astype(np.float64)  # (C', n)
    M = hs.endmembers.values[:, ::d["step"]].astype(np.float64)  # (K, C')
    A = np.full((len(M), Y.shape[1]), 1 / len(M))
    step = 1 / np.linalg.eigvalsh(M @ M.T).max()
    for _ in range(5000):
        V = A - step * (M @ (M.T @ A - Y))
        U = -np.sort(-V, axis=0)
        cumsum = np.cumsum(U, axis=0) - 1
        count = (U - cumsum / np.arange(1, len(M) + 1)[:, None] > 0).sum(axis=0)
        A = np.maximum(V - cumsum[count - 1, np.arange(V.shape[1])] / count, 0)
    return {str(name): float(A[k].mean()) for k, name in enumerate(hs.endmembers["endmember"].values)}


def _ap(scores, truth) -> float:
    hits = truth[np.argsort(-scores, kind="stable")]
    return float((np.cumsum(hits) / np.arange(1, len(hits) + 1) * hits).sum() / hits.sum())


def _rounded(answer):
    """The answer with its numbers rounded to 9 decimals: two draws whose answers differ by rounding alone (10.3's
    similarity depends on the wavelength differences only) give one answer, not a copied one."""
    if isinstance(answer, float):
        return round(float(answer), 9)
    if isinstance(answer, dict):
        return {k: _rounded(v) for k, v in answer.items()}
    if isinstance(answer, (list, tuple)):
        return [_rounded(v) for v in answer]
    return answer


@pytest.mark.parametrize("key", ["02.1", "03.3", "06.4", "07.1", "10.3", "11.3"])
def test_right_answers_pass_and_copied_ones_fail(key, capsys):
    seeds = [exercises.student_seed(name) for name in NAMES]
    answers = [_answers(exercises.data(key, seed))[key]() for seed in seeds]
    assert all(exercises.check(key, answer, seed) for answer, seed in zip(answers, seeds))
    assert "pass" in capsys.readouterr().out
    copied = [(a, s) for a, b, s in zip(answers, answers[1:], seeds[1:]) if repr(_rounded(a)) != repr(_rounded(b))]
    assert copied, f"{key}: no two students with different answers"
    assert not any(exercises.check(key, answer, seed) for answer, seed in copied)


def test_wrong_answers_get_a_hint_without_the_answer(capsys):
    seed = exercises.student_seed("hint")
    d = exercises.data("03.3", seed)
    assert not exercises.check("03.3", (6 * d["D"] + 1, 64), seed)
    out = capsys.readouterr().out
    assert "not yet" in out and "K is not" in out and str(6 * d["D"]) not in out

    d = exercises.data("07.1", seed)
    macro, micro = _answers(d)["07.1"]()
    assert not exercises.check("07.1", (macro + 0.05, micro), seed)
    out = capsys.readouterr().out
    assert "macro mAP is too high" in out and f"{macro:.3f}" not in out
    assert not exercises.check("07.1", (macro, micro - 0.05), seed)
    assert "micro mAP is too low" in capsys.readouterr().out

    d = exercises.data("02.1", seed)
    pairs = _answers(d)["02.1"]()
    assert not exercises.check("02.1", pairs[1:], seed)
    assert "1 pair(s) are missing" in capsys.readouterr().out
    assert not exercises.check("02.1", pairs + [(4, 1)], seed)
    out = capsys.readouterr().out
    assert "do not give between" in out and "(4, 1)" in out


def test_a_wrong_token_count_of_the_sensor_is_named(capsys):
    seed = exercises.student_seed("hint")
    G, L, similarity = _sensor_tokens(exercises.data("10.3", seed))
    assert not exercises.check("10.3", (G + 1, L, similarity), seed)  # the removed channels counted as kept
    out = capsys.readouterr().out
    assert "G is wrong" in out and str(G) not in out
    assert not exercises.check("10.3", (G, L + G, similarity), seed)
    assert "L is wrong" in capsys.readouterr().out
    assert not exercises.check("10.3", (G, L, similarity - 0.05), seed)
    assert "is too low" in capsys.readouterr().out
    assert not exercises.check("10.3", (G, L, 1.0), seed)  # this student has a straddling group: it vs itself
    assert "straddling the window is skipped" in capsys.readouterr().out


def test_a_wrong_confusion_reading_gets_a_hint_without_the_answer(capsys):
    seed = exercises.student_seed("hint")
    d = exercises.data("06.4", seed)
    accuracy, (true, predicted), least = _confusion_reading(d)
    assert not exercises.check("06.4", (accuracy, (predicted, true), least), seed)  # rows and columns swapped
    out = capsys.readouterr().out
    assert "is not the most frequent confusion" in out and "rows are the truth" in out
    other = next(name for name in d["classes"] if name != least)
    assert not exercises.check("06.4", (accuracy, (true, predicted), other), seed)
    out = capsys.readouterr().out
    assert f"{other} is not the class of lowest precision" in out and least not in out
    assert not exercises.check("06.4", (accuracy + 0.05, (true, predicted), least), seed)
    assert "the accuracy is too high" in capsys.readouterr().out


def test_a_partly_wrong_table_names_one_wrong_entry(capsys):
    from s2lab.sensors import S2_13BANDS

    everything_b01 = {name: "B01" for name in S2_13BANDS}
    assert not exercises.check("02.3", everything_b01, exercises.student_seed("hint"))
    out = capsys.readouterr().out
    assert "of 13 are wrong, e.g. the most similar band of" in out and "is not B01" in out
    assert not exercises.check("02.3", {"B01": "B02"}, exercises.student_seed("hint"))
    assert "one entry per band of the 13" in capsys.readouterr().out


def test_unanswered_and_malformed_answers(capsys):
    assert not exercises.check("03.3", None)
    assert "not answered yet" in capsys.readouterr().out
    assert not exercises.check("03.3", 768)  # one number where (K, side) is expected
    assert "wrong form" in capsys.readouterr().out
    with pytest.raises(KeyError, match="no checkable exercise '99.1'; expected one of .*03.3"):
        exercises.check("99.1", 1)


def _exercise_cells(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text())["cells"]
    start = next(i for i, c in enumerate(cells)
                 if c["cell_type"] == "markdown" and "".join(c["source"]).lstrip().startswith("## Exercises"))
    after = []
    for cell in cells[start + 1:]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and text.lstrip().startswith("## "):
            break
        after.append((cell["cell_type"], text))
    return after


@pytest.mark.parametrize("key", sorted(exercises.REGISTRY))
def test_each_exercise_is_checked_in_its_notebook(key):
    notebook, = (ROOT / "notebooks").glob(f"{key.split('.')[0]}_*.ipynb")
    calls = [text for kind, text in _exercise_cells(notebook)
             if kind == "code" and f'exercises.check("{key}"' in text]
    assert len(calls) == 1, f"{notebook.name}: expected one code cell under '## Exercises' checking {key}"
    assert calls[0].rstrip().splitlines()[-1].startswith(f'exercises.check("{key}"'), "the check is not the last line"


def test_the_ablation_reading_uses_paired_effects_and_the_noise_floor(monkeypatch, capsys):
    """12.4's rule on given scores (the shipped models' runs are the solution script's): the effect is the mean paired
    difference from the reference, the floor twice the reference's sd over the mask seeds."""
    from s2lab.exercises import hyperspectral_and_ablations as module

    seed = exercises.student_seed("hint")
    d = exercises.data("12.4", seed)
    changes = list(d["changes"])
    reference = [0.50, 0.52, 0.48]  # sd 0.02: the floor is 0.04
    scores = {"reference": reference, changes[0]: [0.80, 0.84, 0.80], changes[1]: [0.465, 0.485, 0.445],
              changes[2]: [0.55, 0.58, 0.53]}  # effects +0.313, -0.035, +0.053
    monkeypatch.setattr(module, "ablation_scores", lambda data: scores)
    effect = float(np.mean(np.subtract(scores[changes[0]], reference)))
    assert exercises.check("12.4", (changes[0], effect, 2), seed)
    capsys.readouterr()
    assert not exercises.check("12.4", (changes[2], 0.053, 2), seed)
    assert f"the {changes[2]} change does not move the ratio most" in capsys.readouterr().out
    assert not exercises.check("12.4", (changes[0], -effect, 2), seed)
    out = capsys.readouterr().out
    assert "is too low" in out and f"{effect:.3f}" not in out
    assert not exercises.check("12.4", (changes[0], effect, 3), seed)  # -0.035 is within 0.04 (beyond 0.033, ddof 0)
    assert "beyond the noise floor is wrong" in capsys.readouterr().out


def test_the_radar_verdict_needs_both_differences_above_their_spread(monkeypatch, capsys):
    """09.4's verdict on given radar-test results (the shipped model's runs are the solution script's)."""
    from s2lab.exercises import change_and_fusion as module
    from s2lab.models import fusmae

    seed = exercises.student_seed("hint")
    results = {"mean": {"own": 0.0150}, "minus_own": {"another patch's": {"mean": -2e-4, "sd": 1e-4},
                                                      "constant": {"mean": 60e-4, "sd": 5e-4}}}
    monkeypatch.setattr(module, "held_out_fusion_windows", lambda name: (None, None, None))
    monkeypatch.setattr(fusmae, "radar_use", lambda *args, **kwargs: results)
    assert exercises.check("09.4", (150.0, -2.0, False), seed)
    capsys.readouterr()
    assert not exercises.check("09.4", (150.0, -2.0, True), seed)
    assert "the verdict does not follow the rule" in capsys.readouterr().out
    assert not exercises.check("09.4", (150.0, -2.0, "no"), seed)
    assert "not True or False" in capsys.readouterr().out
    assert not exercises.check("09.4", (160.0, -2.0, False), seed)
    out = capsys.readouterr().out
    assert "with each window's own S1 is too high" in out and "150" not in out
