"""What a benchmark run leaves behind: strict JSON (``json_safe``) and ``RESULTS.md`` (``results_markdown``).

``results_markdown`` renders every part's ``results/<part>.json`` (written by ``s2lab.bench.run``) as a section with
the machine and date it ran on; a part without a file is left out, so one part can be re-run alone.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path


def json_safe(value: object) -> object:
    """inf / NaN (a perfect PSNR, say) as null, through dicts, lists and tuples, so the output is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _table(header: Sequence[str], rows: Sequence[Sequence]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]


def _yes(flag) -> str:
    return "yes" if flag else "no"


def _machine_line(m: dict) -> str:
    device = m["device"]
    where = device["name"] if device["type"] == "cpu" else f"{device['name']} ({device['type']}) with {m['cpu']}"
    load = m.get("load_average")
    state = (f"load average {load[0]} on {m['cpu_count']} CPUs: **loaded**, slower than idle" if m.get("loaded")
             else f"load average {load[0] if load else '?'} on {m['cpu_count']} CPUs")
    return (f"{where}; {m['cpu_count']} CPUs, torch {m['torch']} with {m['torch_threads']} threads; {state}; "
            f"{m['date']}")


def _scene_md(f: dict) -> list[str]:
    rows = []
    for name in ("reconstruct", "detect_change"):
        e = f.get(name) or {}
        report = e.get("report") or {}
        rows.append([e.get("command", name), e.get("wall_s"), e.get("cpu_s"), e.get("peak_gib"), report.get("windows"),
                     _yes(e.get("meets_goal")) if e.get("returncode") == 0 else f"failed ({e.get('returncode')})"])
    goal = f.get("goal", {})
    return [f"Input `{f.get('input')}`; goal {goal.get('seconds')} s and {goal.get('peak_gib')} GiB on 2 idle cores.",
            "", *_table(["command", "wall s", "CPU s", "peak GiB", "windows", "meets goal"], rows)]


def _full_tile_md(f: dict) -> list[str]:
    e = f["reconstruct"]
    report = e.get("report") or {}
    state = _yes(e.get("meets_goal")) if e.get("returncode") == 0 else f"failed ({e.get('returncode')})"
    return [f"Input: {f['input']} ({f['file_gib']} GiB on disk, made in {f['make_s']} s); goal: peak memory <= "
            f"{f['goal']['peak_gib']} GiB.", "",
            *_table(["command", "wall s", "CPU s", "peak GiB", "windows", "output GiB", "meets goal"],
                    [[e["command"], e.get("wall_s"), e.get("cpu_s"), e.get("peak_gib"), report.get("windows"),
                      e.get("output_gib"), state]]),
            "", (f"Model MSE {report.get('mse')}, best baseline {report.get('best_baseline')} (model / best "
                 f"{report.get('model_to_best')}).") if report else ""]


def _train_md(f: dict) -> list[str]:
    c = f["config"]
    return [
        (f"Batch {f['batch_size']} of {c['img_size']} px x {c['in_chans']} bands, {f['tokens']} tokens "
        f"({f['kept_tokens']} kept), width {c['embed_dim']}, depth {c['depth']}, decoder {c['decoder_embed_dim']} x "
        f"{c['decoder_depth']}; AdamW; {f['rounds']} alternating rounds of {f['steps_per_round']} steps after "
        f"{f['warmup_steps']} warm-up steps; {f['device']}, {f['threads']} threads."), "",
        *_table(["model", "samples/s"], [["S2MAE (s2lab)", f["s2mae_samples_per_s"]],
                                          ["MAE, timm 0.3.2 written-out attention (s2lab.bench.reference_mae)",
                                           f["reference_samples_per_s"]]]),
        "", (f"Ratio {f['ratio']} (rounds: {', '.join(map(str, f['rounds_ratio']))}); goal >= {f['goal_ratio']}: "
        f"{_yes(f['meets_goal'])}. Ratio of CPU time per step: {f.get('ratio_cpu_time')}."),
    ]


def _peers_md(f: dict) -> list[str]:
    z, r = f["size"], f["rounds"]
    rows = [[name, f["what"][name], row["tokens"], row["precision"], row["samples_per_s"],
             f"{row['samples_per_s_range'][0]}-{row['samples_per_s_range'][1]}", row["cpu_ms_per_sample"]]
            for name, row in f["rows"].items()]
    ratios = [[name, q["samples_per_s"], f"{q['range'][0]}-{q['range'][1]}", q["cpu_time"],
               f"{q['cpu_time_range'][0]}-{q['cpu_time_range'][1]}", _yes(q["meets_goal"])]
              for name, q in f["ratios"].items()]
    return [
        (f"Batch {f['batch_size']} of {z['img_size']} px x {z['in_chans']} bands, width {z['embed_dim']}, depth "
         f"{z['depth']}, decoder {z['decoder_embed_dim']} x {z['decoder_depth']}, AdamW; torch {f['versions']['torch']}"
         f", timm {f['versions']['timm']}, {f['threads']} threads; {r['kept']} clean rounds of {f['steps_per_round']} "
         f"steps per row ({r['discarded']} discarded: others used more than {r['max_others']:.0%} of the CPUs; others "
         f"in the kept rounds: {', '.join(f'{v:.1%}' for v in r['others_kept'] if v is not None) or 'unknown'})."),
        "", *_table(["row", "what", "tokens", "precision", "samples/s", "range", "CPU ms / sample"], rows), "",
        f"s2lab over the peer at the same tokens (median of per-round ratios; goal >= {f['goal']}):", "",
        *_table(["ratio", "samples/s", "range", "CPU time", "range", "meets goal"], ratios), "",
        "Patches applied in memory to the peers (`s2lab.bench.peer_code.PATCHES`):", "",
        *[f"- {p}" for p in dict.fromkeys(f["patches"])],
    ]


def _app_md(f: dict) -> list[str]:
    rows = [[way, f[way]["p50_ms"], f[way]["p95_ms"], f[way]["n"]] for way in ("computed", "shared") if f.get(way)]
    return [f"{f.get('what', '')}; goal p95 <= {f.get('goal_p95_ms')} ms: {_yes(f.get('meets_goal'))}.", "",
            *_table(["way", "p50 ms", "p95 ms", "changes"], rows)]


def _app_load_md(f: dict) -> list[str]:
    def row(name, part):
        if not part or not part["latency"]["all"]:
            return None
        lat, opened = part["latency"]["all"], [x["open_s"] for x in part["sessions"] if x["open_s"] is not None]
        tabs = part.get("tab_open")  # ms; None in runs before the app built tabs when first opened
        return [name, len(part["sessions"]), lat["p50_ms"], lat["p95_ms"], lat["n"], max(opened) if opened else None,
                *((round(tabs["p95_ms"] / 1000, 2), round(tabs["max_ms"] / 1000, 2)) if tabs else (None, None)),
                len(part["failed"])]

    rows = [r for r in (row("one browser session alone", f["solo"]), row(f"{f['settings']['sessions']} sessions at once",
                                                                      f["load"]),
                        row("a real browser page beside them", f.get("browser_under_load"))) if r]
    g = f["goals"]
    met = ", ".join(f"{k} {g['figures'][k]} (goal {g['goals'][k]}): {_yes(v)}" for k, v in g["met"].items())
    return [f"{f['what']}; driver: {f['driver']}; each session {f['settings']['pattern']}, "
            f"{f['settings']['think_s']} s pause; server `panel serve` "
            f"{' '.join(f['settings']['server_args']) or 'as `make app` runs it (one process)'}"
            f", warmed {f['settings'].get('warm_s', 0)} s after a first session"
            f"; server CPU {f['server_cpu_s']} s; errors {f['errors']['total']}.", "",
            *_table(["sessions", "n", "p50 ms", "p95 ms", "changes", "slowest open s", "tab open p95 s",
                     "slowest tab s", "lost"], rows), "",
            "Open: the page until its first tab shows (the scene and a pixel's spectrum); tab open: a tab's first "
            "click until its scores show (the app builds a tab when it is first opened).", "",
            f"Goals: {met}; no errors: {_yes(g['no_errors'])}."]


def _scaling_md(f: dict) -> list[str]:
    rows = [[r["size_px"], r["bands"], r["tokens_per_window"], r["windows"], r["seconds"], r["s_per_mpx"]]
            for r in f["rows"]]
    return [f"{f['what']}; best of {f['repeats']}.", "",
            *_table(["size px", "bands", "tokens / window", "windows", "seconds", "s / Mpx"], rows)]


def _notebooks_md(f: dict) -> list[str]:
    rows = [[r["notebook"], _yes(r["ok"]), r["wall_s"], r["peak_gib"], _yes(r["fits_binder"])] for r in f["rows"]]
    return [f"{f['how']}.", "", *_table(["notebook", "ran", "wall s", "peak GiB", f"<= {f['binder_gib']} GiB"], rows)]


def _gpu_md(f: dict) -> list[str]:
    rows = [[name, f[key]["step_ms"], f[key]["samples_per_s"], f[key]["achieved_tflops"], f[key].get("mfu")]
            for name, key in (("float32", "pretrain_fp32"), ("bf16 autocast", "pretrain_bf16"))]
    t, ft, cm = f["train_vs_reference_bf16"], f["finetune_change"], f["change_map"]
    return [f"{f['device']['name']}; pretraining batch {f['batch_size']}; peak bf16 {f['peak_bf16_tflops']} TFLOP/s.",
            "", *_table(["pretraining step", "ms", "samples/s", "TFLOP/s", "MFU"], rows), "",
            (f"S2MAE vs MAE on written-out attention on the GPU (bf16): {t.get('s2mae_samples_per_s')} vs "
            f"{t.get('reference_samples_per_s')} samples/s, ratio {t.get('ratio')}."),
            (f"Fine-tuning step (change, batch {ft['batch_size']}): {ft['device_step_ms']} ms vs "
            f"{ft['cpu_step_ms']} ms on the CPU, {ft['speedup']}x."),
            (f"Change map of {cm['size_px']} x {cm['size_px']} px: {cm['device_s']} s vs {cm['cpu_s']} s on the CPU, "
            f"{cm['speedup']}x.")]


SECTIONS = {
    "scene": ("Whole scene", _scene_md),
    "full_tile": ("A full Sentinel-2 tile, a band of rows at a time", _full_tile_md),
    "train": ("Training throughput against MAE on timm 0.3.2's written-out attention", _train_md),
    "peers": ("Training throughput against the real MAE and SatMAE code on current timm", _peers_md),
    "app": ("App latency (default view)", _app_md),
    "app_load": ("The app under a class's load (bench/app_load.py)", _app_load_md),
    "scaling": ("Cost against image size and band count", _scaling_md),
    "notebooks": ("Notebooks", _notebooks_md),
    "gpu": ("GPU", _gpu_md),
}


def results_markdown(results_dir: str | os.PathLike) -> str:
    """``RESULTS.md`` from every ``<part>.json`` in ``results_dir``: a section per part with its machine and date."""
    folder = Path(results_dir)
    lines = ["# s2lab benchmarks", "",
             ("Written by `s2lab bench` (`s2lab/bench/`); each part's figures are in `results/<part>.json`. "
             "Re-run one part with `s2lab bench --only PART`."), ""]
    for part, (title, render) in SECTIONS.items():
        path = folder / f"{part}.json"
        if not path.is_file():
            continue
        record = json.loads(path.read_text())
        figures = record["figures"]
        lines += [f"## {title}", "", f"Machine: {_machine_line(record['machine'])}"
                  + (" (quick run)" if record.get("quick") else "") + ".", ""]
        if "skipped" in figures:
            lines.append(f"Skipped: {figures['skipped']}.")
        else:
            try:
                lines += render(figures)
            except (KeyError, TypeError):  # a file written by an older s2lab
                lines.append(f"`results/{part}.json` is in an older format: re-run `s2lab bench --only {part}`.")
        lines.append("")
    return "\n".join(lines)
