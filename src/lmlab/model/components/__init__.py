"""Transformer components, each family behind a registry keyed by its config field."""

from lmlab.model.components import attention, mlp, norm, position  # noqa: F401
