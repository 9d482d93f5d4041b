"""The `lmlab analyze`, `lmlab probe` and `lmlab sample` verbs: parser builders and the plain
functions they call (cli.py registers them with one line: `add_parsers(verbs)`)."""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

from lmlab.commands.generate import add_repetition_args
from lmlab.errors import UserError, need
from lmlab.io import check_out_folder, claim_out_folder, read_text, topmost_missing


def add_parsers(verbs) -> None:
    _analyze(verbs)
    _probe(verbs)
    _sample(verbs)


def _common(p, device: bool = True) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--checkpoint", default="last", help="best, last (default) or a step kept by "
                   "train.keep_checkpoints=log")
    if device:
        p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--out", metavar="DIR", help="write here instead of the run's folder")


def _analyze(verbs) -> None:
    p = verbs.add_parser("analyze", help="attention entropy/sparsity per layer and head, head roles, attention "
                         "maps, head ablation, analyses across checkpoints (writes RUN/analysis/)")
    _common(p)
    p.add_argument("--windows", type=int, default=64, help="validation windows to average over (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the window sample (default 0)")
    p.add_argument("--threshold", type=float, default=1e-3, help="sparsity: weights below this count (1e-3)")
    p.add_argument("--prompt", help="also draw this prompt's attention maps (analysis/maps/)")
    p.add_argument("--layer", type=int, help="maps of this layer only")
    p.add_argument("--head", type=int, help="maps of this head only (with --layer)")
    p.add_argument("--top-k", type=int, default=3, help="attended tokens listed per query (default 3)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--ablate", metavar="L.H,...", help="Δ val loss with these heads ablated, e.g. 0.1,2.3")
    group.add_argument("--ablate-each", action="store_true", help="Δ val loss of ablating each head alone")
    p.add_argument("--mode", default="zero", help="ablation: zero (default) or mean (the head's mean output)")
    p.add_argument("--all-checkpoints", action="store_true", help="statistics and head roles at every kept "
                   "step checkpoint, plotted against step")
    p.set_defaults(fn=cmd_analyze)


def _probe(verbs) -> None:
    p = verbs.add_parser("probe", help="input-embedding probes: nearest neighbours, analogies, PCA "
                         "(writes RUN/analysis/probe/; on the CPU)")
    _common(p, device=False)
    p.add_argument("--neighbours", metavar="W1,W2", help="cosine nearest neighbours of these words")
    p.add_argument("--analogy", metavar="EXPR", help="e.g. 'princess - girl + boy' (query words excluded)")
    p.add_argument("--pca", metavar="W1,W2,...", help="2-D PCA plot of these words' embeddings")
    p.add_argument("--k", type=int, default=10, help="answers per query (default 10)")
    p.set_defaults(fn=cmd_probe)


def _sample(verbs) -> None:
    p = verbs.add_parser("sample", help="sampling table over temperatures / top-p / top-k with distinct-n, "
                         "repetition and log-prob; prompt sensitivity with BLEU (writes RUN/samples/)")
    _common(p)
    p.add_argument("--prompt", help="one prompt")
    p.add_argument("--prompts", metavar="FILE", help="prompts, one per line")
    p.add_argument("--prompt-variants", metavar="FILE", help="rewordings of one prompt, one per line: the continuation "
                   "of each (first --temperature/--top-p/--top-k values, seed 0, at most 50 tokens; 0 = greedy) and "
                   "their pairwise BLEU")
    p.add_argument("--temperature", default="0.5,0.8,1.0,1.2", help="comma-separated (default 0.5,0.8,1.0,1.2)")
    p.add_argument("--top-p", default="1.0", help="comma-separated nucleus masses (default 1.0 = off)")
    p.add_argument("--top-k", default="0", help="comma-separated (default 0 = off)")
    p.add_argument("--seeds", type=int, default=1, help="samples per prompt and setting (seeds 0..N-1)")
    p.add_argument("--max-new-tokens", type=int, default=100)
    add_repetition_args(p, applies="; applies to every setting and prompt variant")
    p.set_defaults(fn=cmd_sample)


OUT_MARKER = ".lmlab-out"  # marks an --out folder as lmlab's: later analyses may overwrite their files there


def _check_out(out: str | None) -> None:
    """--out must be new, empty or lmlab's own: refused before any work, not after it."""
    if out is not None:
        check_out_folder(Path(out), OUT_MARKER)


@contextmanager
def _writing_to(out: str | None):
    """Make and mark the --out folder for the writes inside; a failure removes a folder it made."""
    if out is None:
        yield
        return
    made = topmost_missing(Path(out))
    claim_out_folder(Path(out), OUT_MARKER, "analysis")
    try:
        yield
    except BaseException:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
        raise


def _check_positive(value: int, flag: str) -> None:
    if value < 1:
        raise UserError(f"{flag} {value} is not valid; expected a positive integer")


def cmd_analyze(args, overrides) -> int:
    from lmlab.analysis import ablation, attention, maps, trajectory
    from lmlab.analysis.source import check_windows_fit, open_run, validation_windows

    _check_positive(args.windows, "--windows")
    _check_positive(args.top_k, "--top-k")
    if args.mode not in ablation.MODES:
        raise UserError(f"--mode {args.mode!r} is not valid; expected zero or mean")
    _check_out(args.out)
    need("matplotlib", "lmlab analyze (its figures)")
    loaded = open_run(args.run_dir, args.checkpoint, args.device)
    check_windows_fit(args.windows, loaded.cfg.model.context_len)  # validate everything before any work or file
    n_layer = attention.attention_layers(loaded.model)
    maps.check_head(args.layer, args.head, n_layer, loaded.model.config.n_head)
    if args.ablate is not None:
        ablation.parse_heads(args.ablate, n_layer, loaded.model.config.n_head)
    if args.prompt is not None:
        maps.encode_prompt(loaded.tokenizer, args.prompt, loaded.model.config.context_len)
    if args.all_checkpoints:
        trajectory.check_kept(loaded.run.root)
    out = Path(args.out) if args.out else loaded.run.analysis
    windows = validation_windows(loaded, args.windows, args.seed)
    with _writing_to(args.out):
        files = _analyze_all(args, loaded, windows, out)
    _wrote(files)
    return 0


def _analyze_all(args, loaded, windows, out: Path) -> list[Path]:
    """Every analysis the flags ask for, printed and written under `out`; the files written."""
    from lmlab.analysis import ablation, attention, heads, pipeline, trajectory

    stats, files = pipeline.attention_report(loaded, windows, out, args.threshold)
    print(f"{loaded.run.root} at step {loaded.meta.get('step')}: attention over {len(windows)} validation windows")
    print(attention.format_table(stats))
    roles, more = pipeline.roles_report(loaded, windows, out)
    files += more
    print(heads.format_roles(roles))
    if args.prompt is not None:
        result, more = pipeline.maps_report(loaded, out, args.prompt, args.layer, args.head, args.top_k)
        files += more
        print(result["text"] if len(result["text"]) < 4000 else result["text"][:4000] + "\n  ... (see files)")
    if args.ablate is not None or args.ablate_each:
        result, more = pipeline.ablation_report(loaded, windows, out, args.ablate, args.ablate_each, args.mode)
        files += more
        print(ablation.format_each(result) if args.ablate_each else
              f"ablating {','.join(result['heads'])} ({args.mode}): val loss {result['base_loss']:.4f} -> "
              f"{result['loss']:.4f} (Δ {result['delta_loss']:+.4f})")
    if args.all_checkpoints:
        result, more = pipeline.checkpoints_report(loaded.run.root, windows, out, args.threshold, args.device)
        files += more
        print(trajectory.format_trajectory(result))
    return files


def cmd_probe(args, overrides) -> int:
    from lmlab.analysis import pipeline, probe

    if not (args.neighbours or args.analogy or args.pca):
        raise UserError("lmlab probe needs --neighbours W1,W2, --analogy 'a - b + c' or --pca W1,W2,...")
    _check_positive(args.k, "--k")
    _check_out(args.out)
    with _writing_to(args.out):
        result = pipeline.probe_run(args.run_dir, args.checkpoint, _words(args.neighbours), args.analogy,
                                    _words(args.pca), args.k, args.out)
    if "neighbours" in result:
        print(probe.format_neighbours(result["neighbours"]))
    if "analogy" in result:
        print(probe.format_analogy(result["analogy"]))
    if "pca" in result:
        for word, (x, y) in zip(result["pca"]["words"], result["pca"]["coords"]):
            print(f"{word!r}: ({x:+.3f}, {y:+.3f})")
        for note in result["pca"]["notes"]:
            print(f"  note: {note}")
    _wrote(result["files"])
    return 0


def _words(text: str | None) -> list[str] | None:
    if text is None:
        return None
    words = [w.strip() for w in text.split(",")]
    if not all(words):
        raise UserError(f"{text!r}: expected comma-separated words without empty items")
    return words


def cmd_sample(args, overrides) -> int:
    from lmlab.analysis import sampling

    temps = sampling.parse_floats(args.temperature, "--temperature", 0.0, 100.0)
    top_ps = sampling.parse_floats(args.top_p, "--top-p", 0.0, 1.0, low_open=True)
    top_ks = sampling.parse_ints(args.top_k, "--top-k")
    _check_positive(args.seeds, "--seeds")
    if args.max_new_tokens < 1:
        raise UserError(f"--max-new-tokens {args.max_new_tokens} is not valid; expected a positive integer")
    _check_out(args.out)
    prompts = _prompts(args)
    if not prompts and not args.prompt_variants:
        raise UserError("lmlab sample needs --prompt TEXT, --prompts FILE or --prompt-variants FILE")
    settings = sampling.sampling_grid(temps, top_ps, top_ks, args.repetition_penalty, args.no_repeat_ngram)
    for setting in settings:  # refused before the model loads
        setting.check(args.max_new_tokens)
    files = []
    with _writing_to(args.out):
        files += _sample_files(args, prompts, settings)
    _wrote(files)
    return 0


def _sample_files(args, prompts, settings) -> list:
    from lmlab.analysis import pipeline, sampling

    files = []
    if prompts:
        study = pipeline.sample_run(args.run_dir, prompts, settings, args.checkpoint, args.seeds,
                                    args.max_new_tokens, args.device, args.out)
        print(sampling.format_study(study))
        files += study["files"]
    if args.prompt_variants:  # the first setting
        variants = _read_lines(args.prompt_variants, "--prompt-variants")
        result = pipeline.sensitivity_run(args.run_dir, variants, settings[0], 0, min(args.max_new_tokens, 50),
                                          args.checkpoint, args.device, args.out)
        print(sampling.format_sensitivity(result))
        files += result["files"]
    return files


def _prompts(args) -> list[str]:
    prompts = []
    if args.prompt is not None:
        if not args.prompt:
            raise UserError("--prompt is empty; give text to continue")
        prompts.append(args.prompt)
    if args.prompts:
        prompts += _read_lines(args.prompts, "--prompts")
    return prompts


def _read_lines(path: str, flag: str) -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{flag} {path}: no such file")
    lines = [line.rstrip("\n") for line in read_text(p, flag).splitlines() if line.strip()]
    if not lines:
        raise UserError(f"{flag} {path}: the file has no non-empty lines")
    return [line.replace("\\n", "\n") for line in lines]


def _wrote(files) -> None:
    for path in files:
        print(f"wrote {path}")
