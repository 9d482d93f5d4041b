"""A run's config from what a user names: a preset or a TOML file, then --data, then dotted
overrides. The command line, studies and the torchrun launcher all come through here, so the
three read a config the same way (and none of them climbs up into the command line for it)."""

from __future__ import annotations

from pathlib import Path

from lmlab.errors import UserError


def resolve_config(spec: str | None, data: str | None, overrides: dict[str, str]):
    """PRESET name or CONFIG.toml, then --data, then dotted overrides."""
    from lmlab.config import apply_overrides, load_config
    from lmlab.presets.registry import get_preset

    if spec and (spec.endswith(".toml") or Path(spec).is_file()):
        cfg = load_config(spec)
    else:
        cfg = get_preset(spec or "demo")
    if data:
        path = Path(data).expanduser()
        if not path.exists():  # a path relative to the current directory first, else under the data root
            path = apply_overrides(cfg, overrides).data.resolve(data)  # (--data.root among the overrides counts)
        if not path.exists():
            where = "" if Path(data).is_absolute() or path == Path(data) else f" (nor {path})"
            raise UserError(f"--data {data}: no such file or directory{where}")
        cfg = cfg.replace(data={"sources": [], "source": "text", "path": str(path.resolve())})
    return apply_overrides(cfg, overrides)
