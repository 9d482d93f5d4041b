import pytest

from lmlab.config import RunConfig, apply_overrides, load_config
from lmlab.errors import UserError
from lmlab.presets import PRESETS, get_preset


def test_defaults_and_every_preset_validate():
    RunConfig()
    for name in PRESETS:
        assert isinstance(get_preset(name), RunConfig)


def test_toml_round_trip(tmp_path, tiny_cfg):
    cfg = tiny_cfg.replace(model={"dropout": 0.25, "norm": "rmsnorm"}, train={"lr": 1e-5})
    path = tmp_path / "c.toml"
    cfg.save(path)
    assert load_config(path) == cfg


def test_partial_toml_keeps_defaults(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('name = "x"\n[model]\nn_layer = 2\n[train]\nlr = 0.01\n')
    cfg = load_config(path)
    assert (cfg.name, cfg.model.n_layer, cfg.train.lr, cfg.model.d_model) == ("x", 2, 0.01, RunConfig().model.d_model)


def test_overrides_are_typed(tiny_cfg):
    cfg = apply_overrides(tiny_cfg, {"model.n_layer": "3", "train.lr": "3e-4", "model.bias": "false",
                                     "train.max_steps": "1_000"})
    assert (cfg.model.n_layer, cfg.train.lr, cfg.model.bias, cfg.train.max_steps) == (3, 3e-4, False, 1000)


@pytest.mark.parametrize("overrides, message", [
    ({"model.n_layer": "two"}, "model.n_layer='two' is not valid; expected an int"),
    ({"model.bias": "maybe"}, "model.bias='maybe' is not valid; expected true or false"),
    ({"model.d_model": "33"}, "model.d_model=33 is invalid; expected a multiple of model.n_head=2"),
    ({"model.n_kv_head": "3", "model.n_head": "4", "model.d_model": "32"}, "model.n_kv_head=3 is invalid"),
    ({"model.widht": "3"}, "--model.widht: unknown field; valid fields of model: arch"),
    ({"modle.n_layer": "3"}, "--modle.n_layer: unknown setting"),
    ({"model.norm": "batchnorm"}, "model.norm='batchnorm' is not known; valid: layernorm, none, rmsnorm"),
    ({"train.precision": "fp8"}, "train.precision='fp8' is invalid; expected one of auto, fp32, bf16, fp16"),
    ({"train.dist_backend": "mpi"}, "train.dist_backend='mpi' is invalid; expected one of auto, gloo, nccl"),
    ({"train.device": "cuda:x"}, "train.device='cuda:x' is invalid; expected auto, cpu, cuda, cuda:N or mps"),
    ({"train.device": "cpu:1"}, "expected auto, cpu, cuda, cuda:N or mps"),  # only cuda is indexed
    ({"train.lr": "-1"}, "train.lr=-1.0 is invalid; expected a positive float"),
    ({"data.val_fraction": "0.9"}, "data.val_fraction=0.9 is invalid"),
])
def test_bad_values_name_field_value_and_valid_choices(tiny_cfg, overrides, message):
    with pytest.raises(UserError) as err:
        apply_overrides(tiny_cfg, overrides)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_toml(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nn_layer = 2")
    with pytest.raises(UserError, match="not valid TOML"):
        load_config(bad)
    bad.write_text("[modle]\nn_layer = 2\n")
    with pytest.raises(UserError, match="unknown section 'modle'"):
        load_config(bad)
    bad.write_text("[model]\nn_layer = 'two'\n")
    with pytest.raises(UserError, match="model.n_layer='two'"):
        load_config(bad)
    with pytest.raises(UserError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


def test_unknown_preset_lists_valid_ones():
    with pytest.raises(UserError, match="unknown preset 'nope'; valid presets: .*demo"):
        get_preset("nope")


def test_a_saved_run_from_before_vocab_padding_loads_unpadded(tmp_path):
    """Runs saved before model.vocab_pad existed hold unpadded weights: their config gets 0, a
    hand-written config gets today's default."""
    from lmlab.config import RunConfig, load_config

    values = RunConfig().to_dict()
    del values["model"]["vocab_pad"]
    import tomli_w

    path = tmp_path / "config.toml"
    path.write_text(tomli_w.dumps(values))
    assert load_config(path, saved_run=True).model.vocab_pad == 0
    assert load_config(path).model.vocab_pad == RunConfig().model.vocab_pad == 64
