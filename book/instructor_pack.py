"""The instructors' page (book/instructors.md): every exercise of every notebook, its allowance and its rubric.

What is read from the notebooks (``exercises``): each numbered exercise, whether a code cell checks it and its
allowance in minutes (``s2lab.notebook_time.exercise_items``, at that module's stated rates). What is written here
(``RUBRIC``): per exercise, a one-line summary of what it asks, the words it opens with (so that a renumbered or
rewritten exercise is caught), what the check verifies (checked exercises only), what a full answer shows, what earns
partial credit, and the pitfalls that can be substantiated, each with its source. What was tried (``TRIED``): the
answers of ``tried_answers.py`` and the verdicts ``s2lab.exercises.check`` gave them, read from
``tried_answers.json``.

``problems`` lists every exercise without a rubric, every rubric without an exercise and every rubric whose opening
words are no longer its exercise's; the page refuses to draw while there is one, and tests/test_book.py fails.

Sources named in the rubric: "review" is the teaching review of the lab as graduate course material (its notebooks 10
and 11 are today's 10-11 and 12, before notebook 10 was split); "solution" is the comment of the
exercise's solution script, ``notebooks/solutions/NN_*.py``; "notebook" is the notebook's own text; "tried" is the
list of tried answers printed under the exercise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from s2lab import notebook_time
from tried_answers import TRIALS

BOOK = Path(__file__).resolve().parent
NOTEBOOKS = BOOK.parent / "notebooks"
TRIED = BOOK / "tried_answers.json"
BENCH = BOOK.parent / "bench" / "results" / "notebooks.json"


@dataclass(frozen=True)
class Exercise:
    """One numbered exercise, read from its notebook: key "NN.k", notebook stem, text, checked or not, minutes."""

    key: str
    notebook: str
    text: str
    checked: bool
    minutes: int


@dataclass(frozen=True)
class Rubric:
    """What is written about one exercise (see the module docstring); ``check`` is empty for an open exercise."""

    asks: str
    opens: str
    full: str
    partial: str
    pitfalls: tuple[str, ...] = ()
    check: str = ""


def exercises(folder: Path = NOTEBOOKS) -> list[Exercise]:
    """Every numbered exercise of every ``NN_name.ipynb`` in ``folder``, in order."""
    found = []
    for path in sorted(Path(folder).glob("[0-9][0-9]_*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        for item in notebook_time.exercise_items(notebook):
            found.append(Exercise(f"{path.stem[:2]}.{item.number}", path.stem, item.text, item.checked, item.minutes))
    return found


def problems(found: list[Exercise], rubric: dict[str, Rubric] | None = None) -> list[str]:
    """Where the rubric and the notebooks' exercises disagree; empty when every exercise has its rubric."""
    rubric = RUBRIC if rubric is None else rubric
    by_key = {e.key: e for e in found}
    out = [f"{k}: no rubric for this exercise of {by_key[k].notebook} (it opens {by_key[k].text[:60]!r})"
           for k in by_key if k not in rubric]
    out += [f"{k}: a rubric for an exercise that no notebook numbers" for k in rubric if k not in by_key]
    for k, e in by_key.items():
        if k in rubric:
            r = rubric[k]
            if not e.text.startswith(r.opens):
                out.append(f"{k}: the exercise now opens {e.text[:60]!r}, not {r.opens!r}: is its rubric still right?")
            if bool(r.check) != e.checked:
                out.append(f"{k}: the notebook {'checks' if e.checked else 'does not check'} it, but its rubric "
                           f"{'does not say' if e.checked else 'says'} what the check verifies")
    return out


def _cell(text: str) -> str:
    """Text fit for one cell of a Markdown table."""
    return " ".join(text.split()).replace("|", "\\|")


def overview(found: list[Exercise], folder: Path = NOTEBOOKS, bench: Path = BENCH) -> str:
    """The Markdown table of the notebooks: exercises, the estimate's two parts and the measured peak memory."""
    estimates = notebook_time.estimates(folder)
    measured = json.loads(bench.read_text(encoding="utf-8"))
    peaks = {Path(r["notebook"]).stem: r for r in measured["figures"]["rows"]}
    limit = measured["figures"]["binder_gib"]
    rows = ["| notebook | exercises (checked) | reading and running (est., min) | exercises (est., min) "
            f"| total (est., min) | peak memory (GiB, measured) | over Binder's {limit:g} GiB |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for stem, e in estimates.items():
        own = [x for x in found if x.notebook == stem]
        peak = peaks[stem]["peak_gib"] if stem in peaks else None
        memory = "not measured" if peak is None else f"{peak:.2f} | {'yes' if peak > limit else 'no'}"
        rows.append(f"| {stem} | {len(own)} ({sum(x.checked for x in own)}) | {e.reading_and_running} "
                    f"| {e.exercises} | {e.total} | {memory} |")
    total = sum(e.total for e in estimates.values())
    machine = measured["machine"]
    rows.append(f"\nAll {len(estimates)} notebooks: {len(found)} exercises ({sum(x.checked for x in found)} checked), "
                f"about {total} minutes in all, {sum(e.exercises for e in estimates.values())} of them exercises. "
                f"Peak memory: `{bench.relative_to(BOOK.parent).as_posix()}`, {machine['cpu']}, "
                f"{machine['cpu_count']} cores, torch {machine['torch']}, {machine['date'][:10]} "
                f"({measured['figures']['how']}).")
    return "\n".join(rows)


def _verdict(key: str, answer: dict) -> str:
    """'passes' (with why, for an answer other than the solution's) or 'fails: ' and the check's hint."""
    if answer["passed"]:
        because = TRIALS[key].passes_because.get(answer["answer"]) if key in TRIALS else None
        return "**passes**" + (f" ({because})" if because else "")
    return "fails: " + answer["printed"].split("] ", 1)[1].removeprefix("not yet: ")


def _tried(key: str, tried: dict) -> list[str]:
    """The lines of the tried answers of ``key``: per student tried, each answer and its verdict."""
    lines = []
    for record in tried["exercises"].get(key, []):
        who = f"student {record['student']}" + (f" ({record['why']})" if record["why"] else "")
        lines.append(f"  - for {who}, data `{json.dumps(record['data'])}`:")
        lines += [f"    - {_cell(a['answer'])}: {_cell(_verdict(key, a))}" for a in record["answers"]]
    return lines


def notebook_section(stem: str, found: list[Exercise], tried_path: Path = TRIED) -> str:
    """The Markdown of one notebook: a table of its exercises, then each exercise's rubric and tried answers."""
    own = [e for e in found if e.notebook == stem]
    if not own:
        raise ValueError(f"{stem}: no exercises found; expected a notebook of {NOTEBOOKS}")
    tried = json.loads(tried_path.read_text(encoding="utf-8"))
    lines = ["| exercise | asks | checked in the notebook | allowance (min) |", "| --- | --- | --- | --- |"]
    for e in own:
        lines.append(f"| {e.key} | {_cell(RUBRIC[e.key].asks)} | {'yes' if e.checked else 'no'} | {e.minutes} |")
    total = sum(e.minutes for e in own)
    lines += ["", f"Allowances add up to {total} minutes; the notebook's header rounds that to "
                  f"{notebook_time.round_minutes(total)}.", ""]
    for e in own:
        r = RUBRIC[e.key]
        lines.append(f"**{e.key}**")
        lines.append("")
        if r.check:
            lines.append(f"- *The check verifies*: {_cell(r.check)}")
        lines.append(f"- *Full answer*: {_cell(r.full)}")
        lines.append(f"- *Partial credit*: {_cell(r.partial)}")
        if r.pitfalls:
            lines.append("- *Pitfalls*:")
            lines += [f"  - {_cell(p)}" for p in r.pitfalls]
        if e.key in tried["exercises"]:
            lines.append(f"- *Tried against the check* (`book/tried_answers.py`, {tried['date']}):")
            lines += _tried(e.key, tried)
        lines.append("")
    return "\n".join(lines)


def answers_that_passed(tried_path: Path = TRIED) -> str:
    """A Markdown list of the tried answers, other than the solution's, that a check passed, and why."""
    tried = json.loads(tried_path.read_text(encoding="utf-8"))
    lines = []
    for key, records in tried["exercises"].items():
        for record in records:
            lines += [f"- {key}, student {record['student']}: {_cell(a['answer'])}: {_cell(_verdict(key, a))}"
                      for a in record["answers"][1:] if a["passed"]]
    tried_count = sum(len(r["answers"]) - 1 for records in tried["exercises"].values() for r in records)
    return "\n".join([f"Of {tried_count} answers tried other than the solutions' ({tried['date']}), "
                      f"{len(lines)} passed:", "", *lines])


def draws(tried_path: Path = TRIED) -> str:
    """One Markdown sentence: per checked exercise, how many different data the first seeds draw, fewest first."""
    counted = json.loads(tried_path.read_text(encoding="utf-8"))["draws"]
    ranked = sorted(counted["distinct"].items(), key=lambda item: (item[1], item[0]))
    return (f"Different data drawn by the seeds 0-{counted['seeds'] - 1}, per checked exercise: "
            + ", ".join(f"{key} {n}" for key, n in ranked) + " (`book/tried_answers.py`).")


RUBRIC: dict[str, Rubric] = {
    # 00 Meet the data ------------------------------------------------------------------------------------------------
    "00.1": Rubric(
        asks="Build the agriculture (B11, B08, B02) and SWIR (B12, B8A, B04) composites; which separates marsh from "
             "forest better?",
        opens='Build the "agriculture" composite',
        full="Both composites with the same percentile stretch, and a verdict that is measured, not judged by eye: "
             "the solution takes the marsh and forest pixels of `cover_map` and the distance between their mean "
             "colours in each stretched composite; the agriculture composite wins. It names the channel that carries "
             "the gap (the NIR band shown in green, bright over forest, dark over marsh) and what decides the rest "
             "(B11 darker over the wet marsh, B02 brighter; B12 hardly differs).",
        partial="The two pictures and a verdict by eye with a reason tied to a band; or the measurement without the "
                "reason.",
        pitfalls=("No answer: the reference solution itself once showed neither picture nor verdict (review, §1, "
                  "'00-1 never answers its question').",
                  "Taking the cover map as independent evidence: it is thresholded on B08 and B11, so part of the gap "
                  "is there by construction; the ranking is what to read (solution)."),
    ),
    "00.2": Rubric(
        asks="Which band has the largest and which the smallest spread, and why is B10's so small?",
        opens="Which band has the largest spread",
        check="On the student's 512 x 512 crop of the 13-band scene: the bands of largest and smallest standard "
              "deviation, by name (case ignored). The 'why' is not checked.",
        full="Both bands for the scene and for the student's crop (the check passes), and the reason: B10 (1374 nm) "
             "lies in a water-vapour absorption band, so the ground is hidden and only high cirrus would show; on "
             "a clear day it is nearly constant (solution).",
        partial="The right bands without the reason, or the reason with the bands of the whole scene instead of the "
                "crop.",
    ),
    "00.3": Rubric(
        asks="Write 512 x 512 pixels of the 10-band scene as a uint16 GeoTIFF of digital numbers and read it back: is "
             "the reflectance the same within 1e-4?",
        opens="Write the full 10-band scene's first 512",
        full="The round trip with `write_geotiff(part * 10000, ..., dtype=\"uint16\")` and `open_raster`, the CRS and "
             "transform compared, and the largest difference stated and explained: rounding to the nearest digital "
             "number costs at most 0.5e-4 of reflectance (the solution asserts it).",
        partial="The file written and read back, values compared but not the georeference; or a difference reported "
                "without its cause.",
    ),
    # 01 Spectral signatures ------------------------------------------------------------------------------------------
    "01.1": Rubric(
        asks="Sentinel-2A against 2B on the sea-water spectrum: which band differs most, by how much, why, and does "
             "a model need to know the satellite? Then a spectrum with a sharp feature.",
        opens="Resample the sea-water spectrum",
        check="On the student's own USGS spectrum: the band of largest |S2B - S2A| over the 13 bands, and its size "
              "within 2 % (the sign is ignored). The comparison with the band's value, the cause and the verdict are "
              "not checked.",
        full="B12, about 1e-4 reflectance on sea water, under 1 % of the band's value; the cause found in the "
             "response functions (B12's response-weighted centre differs most between the twins); the verdict that "
             "for a smooth spectrum the two satellites are interchangeable; and the sharper spectrum's much larger "
             "difference (solution).",
        partial="The number without comparing it with the band's value, or without the reason from the response "
                "functions.",
        pitfalls=("Stopping at the tiny number: on sea water S2A and S2B differ by at most 1.1e-4, a degenerate "
                  "answer (review, §1, exercises); the exercise now asks to compare it with the band's value and to "
                  "try a spectrum with a sharp feature.",),
    ),
    "01.2": Rubric(
        asks="With PROSAIL, the LAI above which B08 changes by less than 1 % per +0.5 LAI.",
        opens="With PROSAIL, find the LAI above which B08",
        check="With the student's band, LAI step and threshold (%): the LAI from which one more step changes the band "
              "by less than the threshold, stepping LAI from one step to 10, within half a step.",
        full="The loop over LAI with the relative change per step, the LAI for the notebook's question and for the "
             "student's draw (the check passes), related to the NIR saturation shown by the notebook's PROSAIL "
             "sliders.",
        partial="The method right but the LAI one step off (the end of the first small step instead of its start).",
    ),
    "01.3": Rubric(
        asks="The band correlation matrix over water pixels only (NDWI > 0.3): which bands stop being redundant, and "
             "why?",
        opens="Compute the correlation matrix on the 40",
        full="The matrix over the water pixels of the 40 m view (their number given), the NIR and SWIR bands "
             "decorrelated from the visible ones, and why: water is dark beyond 750 nm, so those bands hold mostly "
             "noise and haze there (solution).",
        partial="The matrix without the reason, or the reason without restricting the pixels to water.",
    ),
    # 02 Tokenization -------------------------------------------------------------------------------------------------
    "02.1": Rubric(
        asks="Every (p, s) that gives a 120 x 120 tile of 10 bands between 200 and 800 tokens.",
        opens="For a 120 x 120 tile of 10 bands",
        check="On the student's tile (C bands, H px) and token budget: the set of (p, s) pairs, p among 4, 8, 10, 12, "
              "20 dividing H and s in 1..C, counted with `tokenize.patchify`. The hint says how many pairs are wrong "
              "or missing.",
        full="L = ceil(C / s) (H / p)^2, the last band group shorter, applied to the notebook's tile and to the "
             "student's (the check passes).",
        partial="The list with G = C // s (the last, shorter group dropped), or with a p that does not divide H.",
    ),
    "02.2": Rubric(
        asks="Show that S2MAE's shared token projection equals a Conv3d with kernel = stride = (s, p, p).",
        opens="Show that S2MAE's shared token projection",
        full="`TokenEmbed`'s weight copied as `weight.T.reshape(D, 1, s, p, p)` with its bias, and the two outputs "
             "equal (`torch.allclose`) once the convolution's output is flattened group-major, (B, G h w, D) "
             "(solution).",
        partial="The shapes right but the outputs compared in another token order, or not compared.",
    ),
    "02.3": Rubric(
        asks="The most similar other band of each of Sentinel-2's 13 bands by wavelength code, against notebook 01's "
             "correlation.",
        opens="Build wavelength embeddings for Sentinel-2's 13",
        check="At the student's embedding width: for each of the 13 bands, the other band of highest cosine "
              "similarity of the wavelength codes. The comparison with notebook 01 is not checked.",
        full="The 13 neighbours at the student's width, the ones that are not neighbours in wavelength pointed out "
             "and explained (the fast sinusoids wrap around, so similarity is not monotone in distance beyond a few "
             "hundred nm; at width 64, B10 at 1374 nm comes out closest to B07 at 783 nm), and the contrast with "
             "notebook 01, whose correlation groups bands by how materials respond (red edge and NIR together) "
             "(solution).",
        partial="The neighbours without explaining the ones far away in wavelength, or without the comparison.",
        pitfalls=("Assuming the codes are monotone in wavelength distance: the reference solution once said 'a "
                  "neighbour in wavelength' while printing B10 -> B07 (review, §1 exercises and §3 item 6), and "
                  "the review names 'wavelength codes are monotone in distance' as a belief to test (§6). For a "
                  "student drawn width 128 the nearest band in wavelength is also the answer, so the check passes "
                  "the belief there (tried).",),
    ),
    # 03 Masking ------------------------------------------------------------------------------------------------------
    "03.1": Rubric(
        asks="How often random 3D masking at 0.75 removes a spatial position in all five groups, against 0.75^5 and "
             "tube masking.",
        opens="With random 3D masking at ratio 0.75",
        check="On the student's grid and ratio: the share of positions removed in every group, within 0.015 of the "
              "exact value C(L - G, R - G) / C(L, R), R the removed tokens.",
        full="An estimate over 200 draws (the solution's lands within 0.01 of the exact share), compared with 0.75^5 "
             "= 0.237 and explained (each token is removed with probability 0.75, nearly independently; exactly K "
             "are kept, so the draws are slightly negatively correlated), and tube masking's 0.75 (a position goes "
             "in every group or in none).",
        partial="The estimate without the comparison or the explanation; or 0.75^5 alone.",
        pitfalls=("The check cannot tell ratio^G from the estimate: over every grid and ratio the exercise draws (G "
                  "3-5, ratios 0.6-0.85, N = 256) ratio^G is less than 0.002 from the exact share, inside the 0.015 "
                  "the check allows (tests/test_book.py computes it; tried). Ask for the 200-draw estimate itself.",),
    ),
    "03.2": Rubric(
        asks="Tube masking by hand, equal to `masking.tube_masking` under the same seed when G divides K.",
        opens="Write tube masking by hand",
        full="Random masking of the N positions repeated over the G groups in group-major order, equal (`torch."
             "equal`) to `masking.tube_masking` for several seeds (the solution tries 5, batch 3).",
        partial="A correct mask in another token order, or one not compared with the library.",
        pitfalls=("The number of kept tokens: s2lab keeps round(L (1 - r)), MAE's code int(L (1 - r)), one token "
                  "apart at L = 1280, r = 0.9 (review, §3 item 5; notebook 03 now says so).",),
    ),
    "03.3": Rubric(
        asks="At which K does attention cost as much as a block's per-token layers (D = 128), and what square crop "
             "reaches that K at ratios 0.75 and 0.9?",
        opens="With the FLOP counts of section 5",
        check="On the student's width D and ratio (p = 8, G = 5): K = 6 D exactly, and the crop side: the smallest "
              "multiple of p whose kept tokens, round(G (side / p)^2 (1 - ratio)), reach K.",
        full="12 K D^2 = 2 K^2 D, so K = 6 D (768 at D = 128); the side in pixels before and after rounding up to a "
             "multiple of p (at D = 128: 200 px at 0.75 and 320 px at 0.9 by the check's rule).",
        partial="K right and the side left unrounded, or rounded to the nearest pixel rather than up to a multiple "
                "of p.",
        pitfalls=("Counting kept tokens as MAE does, int(L (1 - r)), or taking the side from the square root in "
                  "floating point: for 2 of the 15 (D, ratio) pairs the exercise draws (D = 96 at 0.8, D = 192 at "
                  "0.9) L (1 - r) equals K exactly and floating point makes it just less, so both give one p too much "
                  "(200 instead of 192, 392 instead of 384) and the check says 'too large' (tests/test_book.py "
                  "computes it; tried, seed 34). It is the round-against-int difference that notebook 03's section 1 "
                  "explains (review, §3 item 5).",),
    ),
    # 04 Live reconstruction ------------------------------------------------------------------------------------------
    "04.1": Rubric(
        asks="S2MAE and the naive fills' PSNR on the farmland crop at ratios 0.5-0.95: where is the model's lead "
             "largest?",
        opens="On the farmland crop with seed 0",
        check="On the student's own 128 px crop of the held-out half, ratio and mask seed (random masking): S2MAE's "
              "PSNR minus the best of the five fills', within 0.05 dB. The farmland table is not checked.",
        full="The table at the four ratios with the lead per ratio, its sign kept (a fill beats the model at low "
             "ratios: at 0.5 the Gaussian fills do, solution), and the ratio of the largest lead read from it, "
             "with the reason: the fills lose their visible neighbours faster than the model loses its context.",
        partial="The table without a conclusion, or a conclusion drawn from one end of it.",
        pitfalls=("Reading a trend off one crop and one seed: when the review ran it, the solution's own output "
                  "(leads 1.67, 2.47, 2.10, 1.29 dB) contradicted its comment that the lead grows with the ratio "
                  "(review, §1 exercises, §3 item 10). On this checkout the script prints -3.59, -0.77, 0.64 and "
                  "1.08 dB, a rising lead; the trend is the models', not a law.",
                  "Expecting a positive lead: on some crops a fill wins and the answer is negative (tried, seed 0: "
                  "the sign matters there; for the default student the lead is about 0 dB, so a reversed sign "
                  "passes).",),
    ),
    "04.2": Rubric(
        asks="The shipped SatMAE's PSNR over seeds 0-4 on the town crop under four masking strategies: which is "
             "hardest, and why?",
        opens="The shipped SatMAE was pretrained with `balanced`",
        full="The four averages over 5 seeds; `consistent` is hardest (on this checkout 29.76 dB against 30.58-30.60 "
             "for the others, as the solution printed), because it removes every band group of a position at "
             "once, so nothing of the spectrum is left there and only space helps (solution).",
        partial="The table from one seed, or without the reason.",
        pitfalls=("Trusting the model's JSON for its training masks: it says `independent`, the former name of the "
                  "equal-share draw now called `balanced` (solution).",),
    ),
    "04.3": Rubric(
        asks="Un-normalise the per-patch target with whole-crop visible statistics instead of the 3 x 3 neighbours': "
             "how much worse is the PSNR?",
        opens="Un-normalise the per-patch normalised target",
        full="Both PSNRs in reflectance (the solution printed 23.75 dB for the whole crop against 32.50 dB for the "
             "neighbours on this checkout) and the reason: local statistics are much closer to a removed token's; "
             "the target lives in the model's scaled space, the PSNR in reflectance.",
        partial="The two numbers without the reason.",
        pitfalls=("Un-normalising with the removed tokens' true mean and standard deviation: that leaks the answer "
                  "(notebook 04's patch-target lesson). It is not what MAE's figures do: MAE's demo uses a model "
                  "trained on pixel targets for its pictures (review, §3 item 4).",),
    ),
    # 05 Pretraining --------------------------------------------------------------------------------------------------
    "05.1": Rubric(
        asks="Interrupt a 40-step run after step 19, resume it from its checkpoint: are the final weights identical "
             "to an uninterrupted run's?",
        opens="**Resume.**",
        full="Weights identical tensor by tensor (`torch.equal`), the resumed run starting at step 20 with 40 losses "
             "in all (solution).",
        partial="The runs compared by their last loss, or by `allclose` rather than equality.",
    ),
    "05.2": Rubric(
        asks="The naive fills and the shipped S2MAE at ratios 0.25-0.9 on held-out tiles: does spatial context keep "
             "its lead over the band mean, and does the model's lead grow?",
        opens="**Baselines across mask ratios.**",
        check="On the student's held-out tiles, ratio and mask seed: the name of the fill of lowest masked MSE and "
              "the shipped model's masked MSE x 1e4, within 1 %. The trend across ratios is not checked.",
        full="The table of masked MSE at the four ratios with the same masks for all; the spatial fills' edge over "
             "the band mean shrinks as the ratio grows but holds up to 0.9 (every spatial fill still beats it there), "
             "and the model's lead over the best fill is largest at high ratios, where copying fails (solution).",
        partial="The table without the two readings.",
    ),
    "05.3": Rubric(
        asks="Show that a sin-cos model's spatial table on a 64 px image is the 8 x 8 sin-cos table itself.",
        opens="**Fixed tables.**",
        full="`fixed.pos.spatial_table((8, 8))` equal to `sincos_2d(d, 8, 8)` and different from the 4 x 4 table "
             "upsampled: a fixed table is recomputed for a new grid, a learnt one interpolated (solution).",
        partial="The equality without the contrast with interpolation.",
    ),
    # 06 Scene classification -----------------------------------------------------------------------------------------
    "06.1": Rubric(
        asks="Linear-probe the shipped SatMAE as the S2MAE was probed: which encoder probes better?",
        opens="**Another encoder.**",
        full="Both probes with the same images, steps and learning rate, the better one named, and the caveats: the "
             "set is synthetic unless EuroSAT is found, and short CPU runs move a few points between seeds "
             "(solution).",
        partial="Probes with different settings, or a verdict without the caveats.",
        pitfalls=("Forgetting that the data are synthetic on a stock install: the comparison is then about the "
                  "synthetic set (review, §1, 06; the notebook says which set it uses).",),
    ),
    "06.2": Rubric(
        asks="Probe against from-scratch with 2, 5 and 20 images per class: how does the gap change with fewer "
             "labels?",
        opens="**Label efficiency.**",
        full="The accuracies at the three label counts, read as they are: with the same short run at every count "
             "the model from scratch barely learns, so the gap does not shrink as labels grow (on the solution's "
             "runs it widens); testing the usual claim needs a from-scratch model trained to convergence at each "
             "count (solution).",
        partial="The table with a conclusion that its numbers do not support.",
        pitfalls=("Writing the textbook claim ('pretrained features matter most when labels are few') over numbers "
                  "that contradict it: the reference solution once did, printing gaps of 15, 32 and 42 points at 2, "
                  "5 and 20 images per class (review, §1 exercises and 06, §3 item 10). From scratch at 80 steps "
                  "stays at 18-20 %, about twice chance, whatever the labels (review, §1, 06); the notebook now asks "
                  "to read that row as budget-bound.",),
    ),
    "06.3": Rubric(
        asks="A head on the tokens of one spectral group only, probed for each group: which bands carry the most "
             "class information?",
        opens="**Pooling.**",
        full="A head that averages tokens g N ... g N + N - 1 (group-major order), probed for every group, the "
             "groups' bands named and the best one identified, with the same caveats on data and run length as "
             "06.1 (solution).",
        partial="The head averaging the wrong tokens (position-major slices), or one group only.",
    ),
    "06.4": Rubric(
        asks="From a classifier's logits and labels: the accuracy, the most frequent confusion and the class of "
             "lowest precision; does confusing a as b cost a's recall or b's precision?",
        opens="**Read a confusion matrix.**",
        check="On the student's logits and labels: the accuracy within 1e-6 (a fraction, not a percentage), the most "
              "frequent off-diagonal (truth, prediction) pair by class name, and the class of lowest precision. The "
              "recall-or-precision question is not checked.",
        full="The three values and the answer: both at once, a's recall (its row) and b's precision (its column); "
             "and why the least precise class need not be the one that takes the largest confusion (a class that "
             "takes one stray image from many classes loses more precision) (solution).",
        partial="Two of the three values, or the values without the recall-and-precision answer.",
        pitfalls=("Naming the class that takes the most frequent confusion as the least precise: for seeds 0-99 that "
                  "is the answer for 16 students only (tests/test_book.py counts them; tried).",),
    ),
    # 07 Multi-label --------------------------------------------------------------------------------------------------
    "07.1": Rubric(
        asks="Scores for 4 classes of frequency 50, 20, 5 and 1 %, one ranked perfectly and the others at random "
             "(then the other way round): macro and micro mAP by hand and with the library, and the gap explained.",
        opens="**Why macro and micro differ.**",
        check="On the student's scores and labels: macro and micro mAP, each within 1e-6 of "
              "`s2lab.classification_metrics.mean_average_precision`. The explanation is not checked.",
        full="Average precision by hand (precision at the rank of each positive) per class and pooled, equal to the "
             "library's; the explanation: micro pools every decision, so the frequent class (two thirds of the "
             "positives) dominates it, while macro gives each class a quarter (solution).",
        partial="The numbers from the library only, or without the explanation.",
        pitfalls=("The tolerance is 1e-6: values copied from a rounded printout fail (tried).",),
    ),
    "07.2": Rubric(
        asks="Per-class thresholds that maximise F1 against one shared threshold of 0.5.",
        opens="**Thresholds.**",
        full="Per-class F1 at 0.5 and at each class's best threshold, with the caveat that thresholds chosen and "
             "scored on the same images are optimistic; a fair version picks them on a separate validation set "
             "(solution).",
        partial="The comparison without the caveat.",
        pitfalls=("Reporting the best per-class F1 as a result: it is a ceiling, the lesson notebook 08 makes about "
                  "thresholds ('the best t on this label is a ceiling', review, §1, 08).",),
    ),
    "07.3": Rubric(
        asks="Each real patch's mean VV and VH backscatter against its labels: which classes are darkest and "
             "brightest in radar, and why?",
        opens="**Sentinel-1.**",
        full="The means per patch beside the labels, VH below VV everywhere, and the physics: calm water reflects "
             "the radar away (very dark), forest scatters in volume (raises VH), smooth bare fields are dark in VH; "
             "with the caveats that patch means mix classes, six patches make the link weak, and season matters "
             "(the February patch is the brightest in VV) (solution).",
        partial="The physics without the numbers, or the numbers without the caveats.",
        pitfalls=("Drawing a relation from six patch means: the review calls even the patch mAP meaningless with 6 "
                  "patches (review, §1, 07).",),
    ),
    # 08 Change detection ---------------------------------------------------------------------------------------------
    "08.1": Rubric(
        asks="CVA without standardising the bands, cut at Otsu's threshold, against the standardised version: why "
             "does the F1 change?",
        opens="Run CVA without standardising the bands",
        check="On the student's synthetic pair (changes planted into a 256 px crop of the held-out half): the F1 of "
              "CVA + Otsu with and without standardising, each within 0.01, in that order. The 'why' is not checked.",
        full="Both F1 and the reason: a date-wide difference of brightness (sun, atmosphere, calibration, season) "
             "adds to every pixel's change vector, so the magnitudes are no longer mostly near 0 and Otsu's cut "
             "moves; standardising each date's bands removes global gains and offsets (solution).",
        partial="The two numbers without the reason.",
    ),
    "08.2": Rubric(
        asks="The shipped change model's default map on the other held-out city, Abu Dhabi, against the model alone "
             "and CVA + Otsu.",
        opens="Score the shipped model's default map",
        full="Precision, recall and F1 of the three maps on the whole city, each at a threshold fixed beforehand "
             "(`chosen_threshold(meta)` for the default); with OSCD, README's results table gives the same models' "
             "Abu Dhabi F1 for comparison. Without OSCD the pair is synthetic and says so.",
        partial="One map only, or a threshold tuned on Abu Dhabi itself.",
        pitfalls=("Tuning the threshold on the held-out city: 'the threshold must come from training cities; the "
                  "best t on this label is a ceiling' (review, §1, 08, quoting the notebook).",),
    ),
    "08.3": Rubric(
        asks="CVA's recall per kind of planted change at full strength and faint: does the kind decide which regions "
             "CVA misses?",
        opens="Plant synthetic changes into a crop",
        full="At full strength every kind is found almost whole, because the planted spectra differ from the covers "
             "by 0.05-0.3 in several bands against after-date noise of 0.002; faint, recall spreads within every "
             "kind and the kind does not decide it: a region is found where its mean magnitude clears the crop's "
             "Otsu cut (solution).",
        partial="The full-strength table only, or a verdict by kind without looking region by region.",
        pitfalls=("Concluding from full strength that CVA finds every kind: there every kind has a recall of about "
                  "1.0, a degenerate answer (review, §1 exercises); hence the faint variant.",),
    ),
    # 09 SAR + optical fusion -----------------------------------------------------------------------------------------
    "09.1": Rubric(
        asks="The same small FUS-MAE trained with consistent and with independent masks: which has the lower "
             "held-out masked-token MSE, and why is that no proof of better pretraining?",
        opens="Train the same small model twice",
        full="Both models' S2 and S1 held-out MSE; independent masks usually score lower because a place hidden in "
             "one sensor is often visible in the other, an easier task; and a lower reconstruction error is not a "
             "better representation, which only a downstream task measures (solution).",
        partial="The numbers without the second half of the question.",
        pitfalls=("Taking reconstruction loss as a ranking of features, a belief the review proposes to test (§6, "
                  "'reconstruction loss ranks features').",),
    ),
    "09.2": Rubric(
        asks="Does the trained model use the radar? S2's masked-token MSE with its own S1, another patch's and a "
             "constant.",
        opens="Does the trained model use the radar?",
        full="The three MSEs and a verdict sized against their differences: after so little training the effect is "
             "small and may go either way (solution); exercise 4 gives the rule with a noise floor.",
        partial="A verdict from one comparison.",
        pitfalls=("Concluding that fusion helped: the review measured 0.0598 with its own S1, 0.0598 with "
                  "another patch's and 0.0601 with a constant (review, §1, 09); notebook 09 now says the shipped "
                  "model does not read what the radar says about the place.",),
    ),
    "09.3": Rubric(
        asks="Early fusion by hand from the model's parts, checked with a forward hook on `s2_from_s1`.",
        opens="Write early fusion by hand",
        full="S2's fused token embeddings by hand equal to the hooked output (`allclose`, 1e-5), with the tokens "
             "taken in the mask's `ids_keep` order: ratio 0 keeps every token, but shuffled (solution).",
        partial="The right computation compared in the natural token order, which does not match.",
    ),
    "09.4": Rubric(
        asks="Section 8's radar test by hand at the student's ratio and mask seeds: does the shipped model use what "
             "the radar says about the place?",
        opens="**Which modality does the reconstruction lean on?**",
        check="On the two held-out BigEarthNet patches at the student's ratio and seeds: S2's masked MSE x 1e4 with "
              "each window's own S1 (within 1 %), the mean paired difference another patch's minus own x 1e4 "
              "(within 2 %), and the verdict by the notebook's rule (used when both differences from the own case "
              "are positive and larger than their spread over the seeds).",
        full="The numbers and the reading: a constant radar hurts by far more than its spread (the model expects "
             "radar-like input), another patch's radar does as well as its own within the spread, so the model does "
             "not read what the radar says about the place (solution).",
        partial="The numbers with a verdict from the constant case alone.",
        pitfalls=("Answering 'used' because the constant radar raises the error (tried): the rule needs both "
                  "differences.",),
    ),
    # 10 Hyperspectral ------------------------------------------------------------------------------------------------
    "10.1": Rubric(
        asks="A spectral baseline that fills a removed token from the neighbouring groups at the same position, "
             "scored on the cube and on Sentinel-2 tiles.",
        opens="**A spectral baseline.**",
        full="The fill (groups g - 1 and g + 1, the nearest fill where neither is visible) scored at 75 % with the "
             "lab's spatial fills; it wins by far on the cube, where neighbouring groups are about 20 nm apart, and "
             "loses to every spatial fill on Sentinel-2, where they are far apart; hence hyperspectral bands are "
             "redundant and a cube's score must be read against a spectral baseline (solution).",
        partial="The fill scored on one sensor only, or without the conclusion.",
    ),
    "10.2": Rubric(
        asks="Separate the scene from the bands: the S2-trained model on S2 tiles, on the cube seen through S2's "
             "bands, and on the cube's 198 bands.",
        opens="**The scene or the bands?**",
        full="Three model / best-fill ratios (the solution's full run: 1.67, 1.53 and 1.37) and their reading: "
             "neither the other scene nor the other bands puts the model further behind the fills; the ratio also "
             "moves with how hard each image is for the fills (the best fill's MSE on the cube through S2's bands is "
             "about 30 times that on S2 tiles); running on the cube is not yet transfer (solution).",
        partial="The three ratios without the caveat about the fills.",
    ),
    "10.3": Rubric(
        asks="A spectrometer of the student's own with its water-vapour window removed: how many groups and tokens "
             "does a tile give, and how alike are the codes of the nearest groups lying wholly on either side of the "
             "window?",
        opens="**Your own sensor's tokens.**",
        check="G = ceil(C / s) of the bands left, L = G N, and the cosine similarity of the wavelength codes (each "
              "group's mean wavelength, D_spec = 16) of the last group lying wholly below the window and the first "
              "lying wholly above it (a group straddling the window is skipped), within 0.01.",
        full="G, L and the similarity, with the reason a straddling group is skipped: its bands lie on both sides of "
             "the window and its mean wavelength, hence its code, can fall inside the removed range (it does for 217 "
             "of the 220 seeds of 0-299 that have such a group).",
        partial="G and L right, the similarity of other groups.",
        pitfalls=("Comparing the groups that hold the last kept band below the window and the first above it: for 220 "
                  "of seeds 0-299 one straddling group holds both, so that reading gives a similarity of exactly 1, "
                  "which the check rejects for every one of them; for the other 80 it gives the check's groups "
                  "(tests/test_book.py counts them; tried).",),
    ),
    # 11 Unmixing -----------------------------------------------------------------------------------------------------
    "11.1": Rubric(
        asks="Unmix with every 10th band and with the 10 bands nearest Sentinel-2's centres: how much does the "
             "abundance RMSE grow, and which endmembers suffer most?",
        opens="**Fewer bands.**",
        full="RMSE per endmember and overall for the three band sets, and the reading: with four endmembers even 10 "
             "well-placed bands do nearly as well (unmixing needs K - 1 bands that separate the spectra, extra bands "
             "mostly average the noise); which endmembers suffer depends on where the bands are (the Sentinel-2 set "
             "has none between 950 and 1550 nm) (solution).",
        partial="The RMSE table without the reading.",
    ),
    "11.2": Rubric(
        asks="Endmembers from the cube alone by ATGP, matched to the reference spectra by spectral angle, then FCLS "
             "and the abundance RMSE.",
        opens="**Endmembers without a reference.**",
        full="ATGP's K pixels, their angles to the matched references (`linear_sum_assignment`), the abundance RMSE "
             "beside the one with the reference endmembers, and why it drifts: ATGP picks the most extreme pixels, "
             "pure only if pure pixels exist and are not outliers (solution).",
        partial="ATGP without the matching, so that abundances are compared with the wrong endmembers.",
    ),
    "11.3": Rubric(
        asks="Unmix a 10 x 10 px window of the cube with FCLS on every step-th band: which endmember dominates, and "
             "how far do the abundances move from all the bands'?",
        opens="**Unmixing with fewer bands, on your own window.**",
        check="On the student's window and band step: the mean abundance of each endmember by name, within 0.005 of "
              "non-negative least squares with a sum-to-one row of weight 100 on every step-th band of the cube "
              "and of the endmembers. The cube, and so the answer and the endmember names, depend on whether the "
              "Jasper Ridge cube is found (`S2LAB_DATA_DIR`): grade with the students' setup.",
        full="The mean abundances, the dominant endmember, and the change from all the bands (a few hundredths at "
             "most with four endmembers, solution).",
        partial="Abundances with one constraint missing (non-negativity or the sum to one), or from all the bands.",
    ),
    # 12 Ablations ----------------------------------------------------------------------------------------------------
    "12.1": Rubric(
        asks="Train the decoder-depth settings with a second seed: does their order hold, and how many pairs swap?",
        opens="**Is the order stable?**",
        full="Both seeds' ratios, the swaps counted, and the reading: two seeds of 150 steps cannot establish an "
             "order; a swap means the differences are noise, and no swap is what noise gives one time in six with "
             "three settings (solution).",
        partial="The orders compared without the argument about noise.",
        pitfalls=("Reading the ranking as 'which setting is good': at 150 steps every setting was above 1, so none "
                  "beat copying its neighbours (review, §1, 11 and §5 item 9); the notebook now asks 'First, below "
                  "or above 1?'.",),
    ),
    "12.2": Rubric(
        asks="The four target and scaling settings on the earlier [0, 1]-scaled yardstick beside the spectral "
             "angle: does their order change?",
        opens="**Another yardstick.**",
        full="The table on the three yardsticks and why the order moves: the [0, 1] space divides every band of "
             "every tile by its own range, so errors in flat bands (sea) are magnified; a model that never sees "
             "that scaling is punished there, the window-scaled model trained in that space looks best (solution).",
        partial="The table without the reason.",
        pitfalls=("Taking the patch target's scores at face value: un-normalised with the removed tokens' true "
                  "statistics it is flattered on every yardstick (solution; notebook 04's lesson).",),
    ),
    "12.3": Rubric(
        asks="With 4 seeds of the reference, how many seeds per setting would make the patch-size difference larger "
             "than two standard errors of a difference?",
        opens="**How many seeds?**",
        full="sigma from the 4 seeds, n = 8 (sigma / difference)^2 rounded up, and the reading: a difference of a "
             "fraction of sigma, as most at this scale, needs hundreds of seeds (solution).",
        partial="The formula right and the arithmetic or the reading wrong.",
    ),
    "12.4": Rubric(
        asks="Change one evaluation setting of the shipped S2MAE at a time: which change moves the model / best-fill "
             "ratio most, and which are beyond the noise floor?",
        opens="**Read an ablation.**",
        check="On the student's tiles, reference setting and mask seeds: the change of largest mean paired "
              "difference, that difference with its sign (within 0.01 + 2 %), and how many changes exceed the noise "
              "floor, twice the reference's standard deviation over the mask seeds (ddof=1).",
        full="The three values and their scope: beyond the mask-seed floor means real for these tiles and these "
             "models, not for other tiles or other training runs (solution).",
        partial="The values without the scope of the noise floor.",
    ),
}
