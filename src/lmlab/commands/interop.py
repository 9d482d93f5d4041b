"""`lmlab export` and `lmlab import`: run directories to and from Hugging Face model folders."""

from __future__ import annotations


def add_export_parser(verbs) -> None:
    p = verbs.add_parser("export", help="write a run as a Hugging Face model folder")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--format", default="hf", choices=("hf",), help="hf (transformers; GPT-2- or LLaMA-shaped models)")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write")
    p.add_argument("--checkpoint", default="last", help="last (default), best or a step kept by train.keep_checkpoints=log")
    p.add_argument("--force", action="store_true", help="replace an earlier lmlab export in --out (never other files)")
    p.set_defaults(fn=cmd_export)


def cmd_export(args, overrides) -> int:
    from lmlab.interop import export_run

    out = export_run(args.run_dir, args.out, args.checkpoint, args.format, force=args.force)
    print(f"exported {args.run_dir} to {out} (load with transformers' AutoModelForCausalLM / AutoTokenizer)")
    return 0


def add_import_parser(verbs) -> None:
    p = verbs.add_parser("import", help="make a run directory from a local Hugging Face GPT-2 or Llama folder")
    p.add_argument("hf_dir", metavar="HF_DIR")
    p.add_argument("--run-dir", required=True, metavar="DIR")
    p.add_argument("--force", action="store_true", help="overwrite an existing run directory")
    p.set_defaults(fn=cmd_import)


def cmd_import(args, overrides) -> int:
    from lmlab.interop import import_run

    run = import_run(args.hf_dir, args.run_dir, args.force)
    print(f"imported {args.hf_dir} into {run}: lmlab eval {run}, lmlab generate {run} --prompt ...")
    return 0
