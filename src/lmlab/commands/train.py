"""`lmlab demo` and `lmlab train`."""

from __future__ import annotations

from lmlab.commands import EPILOG, add_config_args, resolve_config
from lmlab.errors import UserError


def add_demo_parser(verbs) -> None:
    p = verbs.add_parser("demo", help="train the demo preset on the built-in corpus, sample, evaluate, report",
                         epilog=EPILOG)
    p.add_argument("--run-dir", default="runs/demo", help="where the run goes (overwritten; default runs/demo)")
    p.set_defaults(fn=cmd_demo, takes_overrides=True)


def cmd_demo(args, overrides) -> int:
    from lmlab.demo import run_demo

    run_demo(args.run_dir, overrides)
    return 0


def add_train_parser(verbs) -> None:
    p = verbs.add_parser("train", help="train a preset or a config file", epilog=EPILOG)
    add_config_args(p, "train on")
    p.add_argument("--run-dir", metavar="DIR", help="run directory (default runs/<config name>)")
    p.add_argument("--force", action="store_true", help="overwrite an existing run directory")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue RUN_DIR from its last checkpoint")
    p.add_argument("--dry-run", action="store_true", help="print the plan without training: steps, tokens, size, "
                   "predicted peak memory (exit 2 if it would not fit) and a time estimate measured on a few steps")
    p.add_argument("--nproc", type=int, metavar="N", help="train on N processes of this machine through torchrun "
                   "(train.parallel=ddp unless the config says fsdp); see README 'Scale out'")
    p.set_defaults(fn=cmd_train, takes_overrides=True)


def cmd_train(args, overrides) -> int:
    if args.dry_run:
        return dry_run(args, overrides)
    if args.nproc is not None:
        from lmlab.commands.launch import launch

        return launch(args, overrides)
    # the config is resolved (and a mistake in it refused) before the trainer and torch load
    cfg = None if args.resume else resolve_config(args.config, args.data, overrides)
    from lmlab.report import write_report
    from lmlab.train import resume, train
    from lmlab.train.distributed import EXECUTION_FIELDS, is_main_process
    from lmlab.train.summary import format_result

    if args.resume:
        other = sorted(set(overrides) - set(EXECUTION_FIELDS))
        if args.config or args.data or other:
            raise UserError("--resume continues a run with its saved config; drop the preset, --data and overrides "
                            f"(only {', '.join(EXECUTION_FIELDS)} may change on resume)")
        result = resume(args.resume, overrides)
    else:
        result = train(cfg, args.run_dir or f"runs/{cfg.name}", overwrite=args.force)
    if is_main_process():  # under torchrun, rank 0 speaks for the run
        write_report(result.run_dir)
        print(format_result(result))
    return 0


def dry_run(args, overrides) -> int:
    """`lmlab train --dry-run`: the run's plan (lmlab.train.plan), nothing written but the token cache."""
    from lmlab.train.memory import check_fits
    from lmlab.train.plan import estimate_run

    if args.resume or args.nproc is not None:
        raise UserError("--dry-run plans a new run on this process; drop --resume and --nproc")
    cfg = resolve_config(args.config, args.data, overrides)
    est = estimate_run(cfg)
    print(f"lmlab: {cfg.name}: {est.line()}; nothing was trained")
    check_fits(est.memory_parts, est.runtime_bytes, where=f"run {cfg.name}", measured=est.measured_peak_bytes)
    return 0
