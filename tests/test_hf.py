"""Reference equivalence with Hugging Face transformers: same weights, same logits."""

import dataclasses
import json

import pytest
import torch

from lmlab.errors import UserError
from lmlab.interop import from_hf_model, hf_family, to_hf_model
from lmlab.model import ModelConfig, build_model

import transformers  # noqa: E402

V, T = 61, 16
GPT2 = ModelConfig(n_layer=2, n_head=4, d_model=32, context_len=T, vocab_size=V, mlp="gelu_tanh", attention="manual")
LLAMA = ModelConfig(n_layer=2, n_head=4, n_kv_head=2, d_model=32, context_len=T, vocab_size=V, position="rope",
                    norm="rmsnorm", mlp="swiglu", bias=False, tie_embeddings=False, d_mlp=48, norm_eps=1e-6,
                    rope_theta=500.0, attention="sdpa")


def perturbed(cfg: ModelConfig):
    """A model whose norms and biases are not at their init values, so a mis-mapped weight shows."""
    torch.manual_seed(1)
    model = build_model(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def hf_logits(hf_model, x):
    return hf_model(input_ids=x).logits


@pytest.mark.parametrize("cfg", [GPT2, dataclasses.replace(GPT2, mlp="gelu", bias=False),
                                 dataclasses.replace(GPT2, tie_embeddings=False, mlp="relu"),
                                 LLAMA, dataclasses.replace(LLAMA, n_kv_head=1, tie_embeddings=True),
                                 dataclasses.replace(LLAMA, n_kv_head=0, bias=True)],
                         ids=["gpt2", "gpt2_nobias_erf", "gpt2_untied_relu", "llama_gqa", "llama_mqa_tied",
                              "llama_mha_bias"])
def test_export_to_transformers_gives_equal_logits(cfg):
    model = perturbed(cfg)
    hf_model = to_hf_model(model)
    x = torch.randint(0, V, (3, T))
    torch.testing.assert_close(hf_logits(hf_model, x), model(x)[0], atol=1e-5, rtol=1e-5)


def test_import_gpt2_from_transformers():
    torch.manual_seed(2)
    hf_model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=V, n_positions=T, n_embd=32, n_layer=2, n_head=4, bos_token_id=None, eos_token_id=None)).eval()
    with torch.no_grad():
        for p in hf_model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    model = from_hf_model(hf_model)
    assert model.config.mlp == "gelu_tanh" and model.config.tie_embeddings
    x = torch.randint(0, V, (2, T))
    torch.testing.assert_close(model(x)[0], hf_logits(hf_model, x), atol=1e-5, rtol=1e-5)


def test_import_llama_from_transformers():
    torch.manual_seed(3)
    hf_model = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=V, hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=T, rms_norm_eps=1e-6, tie_word_embeddings=False,
        bos_token_id=None, eos_token_id=None, pad_token_id=None)).eval()
    with torch.no_grad():
        for p in hf_model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    model = from_hf_model(hf_model)
    assert (model.config.position, model.config.kv_heads, model.config.d_mlp) == ("rope", 2, 40)
    x = torch.randint(0, V, (2, T))
    torch.testing.assert_close(model(x)[0], hf_logits(hf_model, x), atol=1e-5, rtol=1e-5)


def test_round_trip_is_exact():
    model = perturbed(LLAMA)
    again = from_hf_model(to_hf_model(model))
    for (a, p), (b, q) in zip(model.state_dict().items(), again.state_dict().items()):
        assert a == b and torch.equal(p, q)


@pytest.mark.parametrize("change, switch", [({"position": "alibi"}, "model.position is 'alibi' (it needs 'learned')"),
                                            ({"norm_position": "post"}, "model.norm_position is 'post' (it needs 'pre')"),
                                            ({"qk_norm": True}, "model.qk_norm is True (it needs False)"),
                                            ({"n_kv_head": 2}, "model.n_kv_head is 2")])
def test_shapes_without_hf_counterpart_are_refused_by_name(change, switch):
    with pytest.raises(UserError, match="no Hugging Face counterpart") as err:
        hf_family(dataclasses.replace(GPT2, **change))
    assert switch in str(err.value)


@pytest.fixture(scope="module")
def char_run(tmp_path_factory):
    from lmlab.cli import main

    run_dir = tmp_path_factory.mktemp("hf") / "run"
    assert main(["train", "tiny", "--run-dir", str(run_dir), "--train.max_steps=20", "--eval.every=20"]) == 0
    return run_dir


TIKTOKEN_FILES = {"gpt2": "tokenizers/gpt2/gpt2.tiktoken", "cl100k_base": "tokenizers/cl100k_base/cl100k_base.tiktoken"}


@pytest.fixture(scope="module", params=["char", "byte", "bpe", "gpt2", "cl100k_base"])
def exported(request, tmp_path_factory, shared_data):
    """A 5-step GPT-2-shaped run of each exportable tokenizer kind, trained on WikiText-2 valid (so a
    char run knows '<', 'u', 'n', 'k', '>' but not '|' or CJK), its lmlab load and its export loaded
    offline by transformers: (kind, lmlab run, HF tokenizer, HF model, export folder)."""
    from lmlab.cli import main
    from lmlab.load import load_run

    kind = request.param
    root = tmp_path_factory.mktemp(f"hf_{kind}")
    run_dir, out = root / "run", root / "hf"
    path = [f"--tokenizer.path={TIKTOKEN_FILES[kind]}"] if kind in TIKTOKEN_FILES else []
    assert main(["train", "tiny", "--run-dir", str(run_dir), "--train.max_steps=5", "--eval.every=5",
                 "--data", str(shared_data / "wikitext-2" / "valid.txt"), f"--tokenizer.kind={kind}",
                 "--model.position=learned", *path]) == 0
    assert main(["export", str(run_dir), "--format", "hf", "--out", str(out)]) == 0
    hf_model = transformers.AutoModelForCausalLM.from_pretrained(out, local_files_only=True).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(out, local_files_only=True)
    return kind, load_run(run_dir, device="cpu"), hf_tok, hf_model, out


def test_exported_run_loads_offline_in_transformers_with_equal_ids_and_logits(exported, shakespeare):
    kind, ours, hf_tok, hf_model, _ = exported
    text = shakespeare.read_text()[:300] if kind in ("char", "byte") else \
        shakespeare.read_text()[:20000] + " in 2000, 12345 ÄÖü 你好\r\n\t x  "  # digit groups, bytes, spaces
    ids = ours.tokenizer.encode(text)
    assert hf_tok(text)["input_ids"] == ids
    x = torch.tensor([ids[:32]])
    torch.testing.assert_close(hf_model(input_ids=x).logits, ours.model(x)[0], atol=1e-5, rtol=1e-5)


def hf_mean_loss(hf_model, ids: list[int], T: int) -> float:
    """Mean next-token loss through transformers over the windows lmlab's evaluation scores
    (Stream.eval_batches: non-overlapping, T targets each)."""
    T = min(T, len(ids) - 1)
    windows = torch.tensor([ids[k * T:k * T + T + 1] for k in range((len(ids) - 1) // T)])
    with torch.no_grad():  # inputs are T long: the model has T positions, so `labels=` (T + 1) cannot be used
        logits = hf_model(input_ids=windows[:, :-1]).logits
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), windows[:, 1:].flatten()).item()


def test_export_encodes_any_text_as_lmlab_does(exported, shared_data):
    """Special-token spellings, <unk> (WikiText's placeholder word), Unicode a char run has not seen:
    transformers must see lmlab's ids (special tokens are inserted by id, never read from text), and
    the exported model must score the text as lmlab's evaluation does."""
    import json

    from lmlab.eval.metrics import evaluate

    kind, ours, hf_tok, hf_model, out = exported
    tok = ours.tokenizer
    added = [t["content"] for t in json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))["added_tokens"]]
    specials = " ".join(dict.fromkeys(["<|endoftext|>", "<unk>", *added]))
    wiki = (shared_data / "wikitext-2" / "test.txt").read_text(encoding="utf-8")[:1500]
    texts = {"specials": f"a <unk> b <|endoftext|> c {specials} {specials.replace(' ', '')}",
             "unicode": "naïve café — 日本語 🙂", "wikitext": wiki}
    assert "<unk>" in wiki
    if kind == "char":  # the texts hold known characters spelling <unk> and unknown ones
        assert tok.encode("<unk>") == [tok.stoi[c] for c in "<unk>"] and tok.unk_id in tok.encode(texts["unicode"])
    T = ours.cfg.model.context_len
    for name, text in texts.items():
        ids, hf_ids = tok.encode(text), hf_tok(text)["input_ids"]
        assert hf_ids == ids and hf_tok.encode(text, add_special_tokens=False) == ids, name
        ours_loss = evaluate(ours.model, ids, tok, T, batch_size=8)["loss"]
        assert hf_mean_loss(hf_model, hf_ids, T) == pytest.approx(ours_loss, abs=1e-4), name


def test_import_makes_a_working_run(char_run, tmp_path, capsys):
    from lmlab.cli import main
    from lmlab.load import load_run

    assert main(["export", str(char_run), "--out", str(tmp_path / "hf")]) == 0
    assert main(["import", str(tmp_path / "hf"), "--run-dir", str(tmp_path / "imported")]) == 0
    a, b = load_run(char_run, device="cpu"), load_run(tmp_path / "imported", device="cpu")
    x = torch.tensor([a.tokenizer.encode("The object and the class")])
    assert torch.equal(a.model(x)[0], b.model(x)[0])
    assert b.tokenizer.encode("The object") == a.tokenizer.encode("The object")
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "imported"), "--prompt", "The", "--temperature", "0",
                 "--max-new-tokens", "20"]) == 0
    assert capsys.readouterr().out.startswith("The")
    # fine-tuning from the imported weights: the weights move and the held-out loss falls
    imported = tmp_path / "imported"
    config = (imported / "config.toml").read_text()
    config = config.replace("max_steps = 1000", "max_steps = 20").replace("lr = 0.0001", "lr = 0.001")
    (imported / "config.toml").write_text(config)
    capsys.readouterr()
    assert main(["eval", str(imported), "--json"]) == 0
    before = json.loads(capsys.readouterr().out)["loss"]
    assert main(["train", "--resume", str(imported)]) == 0
    tuned = load_run(imported, device="cpu")
    assert tuned.meta["step"] == 20
    assert not torch.equal(tuned.model(x)[0], b.model(x)[0])
    capsys.readouterr()
    assert main(["eval", str(imported), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["loss"] < before


def test_export_refuses_shapes_without_counterpart(tmp_path, capsys):
    from lmlab.cli import main

    run_dir = tmp_path / "alibi"
    assert main(["train", "tiny", "--run-dir", str(run_dir), "--train.max_steps=2", "--eval.every=2",
                 "--model.position=alibi"]) == 0
    capsys.readouterr()
    assert main(["export", str(run_dir), "--out", str(tmp_path / "x")]) == 2
    assert "model.position is 'alibi'" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "nothing"), "--run-dir", str(tmp_path / "r")]) == 2
