"""lmlab vs karpathy/nanoGPT, side by side (bench/bench_nanogpt.py is the command line).

    config     bench configurations and each trainer's command line
    parse      nanoGPT's stdout and lmlab's metrics.jsonl -> steps, times, evaluations
    analysis   pairwise comparison, aggregate over repeats, markdown table
    run        subprocesses, data lookup, nanoGPT's data preparation

Its self-test is tests/test_bench_nanogpt.py, over the recorded outputs in bench/fixtures/.
"""
