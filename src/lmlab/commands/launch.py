"""`lmlab train --nproc N`: torchrun for one machine, started for the user.

The config is resolved and checked here first (world size vs batch, backend, FSDP), so a
mistake is one line before any process starts; then torchrun (`torch.distributed.run`) runs
`python -m lmlab train ...` on N local ranks with the same arguments, `--train.parallel=ddp`
added when the config says `none`. Multi-node runs call torchrun directly (README: Scale out).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from lmlab.errors import UserError


def launch(args, overrides: dict[str, str]) -> int:
    from lmlab.train.distributed import PARALLEL, check_world, torchrun_env

    if args.nproc < 1:
        raise UserError(f"--nproc={args.nproc} is invalid; expected a positive number of processes")
    if torchrun_env() is not None:
        raise UserError("--nproc starts torchrun itself; under torchrun, drop --nproc")
    overrides = dict(overrides)
    cfg = _config(args, overrides)
    if not PARALLEL.get(cfg.train.parallel).distributed:  # (on resume, the run's saved config is rewritten with it)
        overrides["train.parallel"] = "ddp"
        cfg = cfg.replace(train={"parallel": "ddp"})
    check_world(cfg.train, args.nproc)
    from lmlab.data.sources import check_files

    check_files(cfg.data)  # every rank would fail on a missing file, each with torchrun's traceback
    run_dir = Path(args.run_dir or f"runs/{cfg.name}")
    if not args.resume:
        check_target(run_dir, args.force)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.nproc}",
           "-m", "lmlab", "train", *_train_argv(args, overrides)]
    return supervise(cmd)


def check_target(run_dir: Path, force: bool) -> None:
    """What `RunDir.create` refuses on rank 0, refused before N processes start: a folder lmlab did
    not make, or (without --force) a run with a checkpoint, which --resume continues. A run that
    stopped before its first save is started again, as without --nproc."""
    from lmlab.io import LOCK_NAME
    from lmlab.runs import RunDir

    run = RunDir(run_dir)
    if not run_dir.is_dir() or not [p for p in run_dir.iterdir() if p.name != LOCK_NAME]:
        return
    if not run.owned():
        raise UserError(f"run directory {run_dir} already holds files and was not made by lmlab; choose an empty "
                        f"or new --run-dir")
    if not force and (run.has_checkpoint("last") or run.has_checkpoint("best")):
        raise UserError(f"run directory {run_dir} already holds files; use --resume {run_dir} to continue it, "
                        f"--force to overwrite it, or another --run-dir")


def supervise(cmd: list[str]) -> int:
    """Run torchrun in a session of its own and pass SIGINT and SIGTERM on to it (it stops its ranks,
    which save `last`): Ctrl-C and `kill` reach the launcher alone, and each arrives at torchrun
    exactly once, so stopping the launcher stops the run instead of orphaning it. Returns 130 after
    such a stop, as one process does. A signal that comes while torchrun is starting is passed on
    once it has started."""
    stopped: list[int] = []
    proc: subprocess.Popen | None = None

    def forward(signum, frame):
        stopped.append(signum)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        proc = subprocess.Popen(cmd, start_new_session=True)
        if stopped:  # arrived before torchrun existed
            proc.send_signal(stopped[0])
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 130 if stopped else code


def _config(args, overrides: dict[str, str]):
    if args.resume:
        from lmlab.config import load_config
        from lmlab.runs import RunDir

        from lmlab.train.distributed import execution_overrides

        if args.config or args.data:
            raise UserError("--resume continues a run with its saved config; drop the preset and --data")
        from lmlab.checkpoint import require_last

        run = RunDir.open(args.resume, need_checkpoint=False)
        require_last(run)
        return execution_overrides(load_config(run.config, saved_run=True), overrides)
    from lmlab.presets.resolve import resolve_config

    return resolve_config(args.config, args.data, overrides)


def _train_argv(args, overrides: dict[str, str]) -> list[str]:
    argv = [args.config] if args.config else []
    for flag, value in (("--data", args.data), ("--run-dir", args.run_dir), ("--resume", args.resume)):
        if value:
            argv += [flag, str(value)]
    if args.force:
        argv.append("--force")
    return argv + [f"--{k}={v}" for k, v in overrides.items()]
