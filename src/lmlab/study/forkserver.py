"""A warm worker: a process that has imported torch and lmlab once and forks a fresh child for
each run, so a study's runs skip the interpreter start and the imports (most of a tiny run's wall
time) yet stay as isolated as separate processes: a run that crashes, leaks or is killed takes
down only its child.

The server imports but never *uses* torch before forking: torch's intra-op thread pool and
OpenMP start lazily on the first parallel op, and a fork after they started would give the child
a pool whose threads do not exist. Each child sets its own thread count (worker.run_one), seeds
its own RNGs (training does) and starts from the server's untouched globals, so its results are
bit-identical to the same run started alone from the command line (tests/test_study.py).

Protocol (one JSON object a line): the server writes {"ready": pid} once imported, then reads
{"run_dir", "config_path", "status_path", "threads", "log_path"} requests one at a time and answers
{"pid": child} when the child starts and {"code": N} or {"signal": NAME} when it ends. It speaks on
a private copy of its stdout; fds 1 and 2 of a child go to the run's log file.

    python -m lmlab.study.forkserver      (lmlab.study.warm starts it)"""

from __future__ import annotations

import json
import os
import signal
import sys

# What a run imports, imported once here. torch._dynamo: building an AdamW imports it (3 s of a
# tiny run's 5 on 2 busy cores); matplotlib: figures a run draws before the study defers them.
PRELOAD = ("torch", "torch._dynamo", "numpy", "safetensors.torch", "lmlab.train", "lmlab.eval",
           "lmlab.checkpoint", "lmlab.study.worker", "matplotlib.pyplot")


def preload() -> None:
    import importlib

    os.environ.setdefault("MPLBACKEND", "Agg")  # headless, as lmlab's figures draw
    for module in PRELOAD:
        importlib.import_module(module)


class Server:
    def __init__(self, proto):
        self.proto = proto
        self.child = 0  # the pid of the run in progress
        self.stopping = False
        self.pid = os.getpid()

    def say(self, **msg) -> None:
        self.proto.write(json.dumps(msg) + "\n")
        self.proto.flush()

    def forward(self, signum, frame) -> None:
        """SIGTERM (the study stopping, or its death through the parent-death signal): pass it to
        the run, which saves and records itself 'interrupted'; then take no more runs."""
        self.stopping = True
        if self.child:
            os.kill(self.child, signum)

    def serve(self, requests) -> None:
        for line in requests:
            if self.stopping or not line.strip():
                break
            self.run(json.loads(line))
            if self.stopping:
                break

    def run(self, req: dict) -> None:
        pid = os.fork()
        if pid == 0:
            child(req, self.proto, self.pid)
        self.child = pid
        self.say(pid=pid)
        _, status = os.waitpid(pid, 0)  # retried after a signal handler runs (PEP 475)
        self.child = 0
        if os.WIFSIGNALED(status):
            self.say(signal=signal.Signals(os.WTERMSIG(status)).name)
        else:
            self.say(code=os.waitstatus_to_exitcode(status))


def child(req: dict, proto, server: int) -> None:
    """The forked run: its own log, the signal set-up of a fresh worker process, then the run."""
    code = 1
    try:
        proto.close()
        log = os.open(req["log_path"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the server ignores Ctrl-C; a run does not
        from lmlab.study.worker import die_with_parent, run_one

        die_with_parent(server)
        status = run_one(req["run_dir"], req["config_path"], req["status_path"], req["threads"])
        code = 0 if status["status"] == "done" else 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # never return into the server's loop (nor run its atexit handlers)


def main() -> int:
    from lmlab.study.worker import die_with_parent

    proto = os.fdopen(os.dup(1), "w")  # the protocol's own fd: stray prints go to the server's log
    os.dup2(2, 1)
    die_with_parent()  # the study process died: stop, and with us the run in progress
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the runs themselves (same process group)
    server = Server(proto)
    signal.signal(signal.SIGTERM, server.forward)
    preload()
    server.say(ready=os.getpid())
    server.serve(sys.stdin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
