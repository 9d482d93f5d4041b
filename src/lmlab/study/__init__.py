"""Studies: many runs that differ in a few settings, trained alike, compared in one table.

spec (the Study: base + axes + seeds + budget, TOML in/out) -> expand (variants x seeds -> run
plans) -> runner (resumable, failure-isolated execution through an executor: local processes or
Ray) -> results (a row per run) -> stats (mean +- CI per variant, vs a baseline, noise floor) ->
scaling (power-law fits) -> plots. library holds the seed studies as named functions."""

from lmlab.study.spec import Study, load_study  # noqa: F401
