"""Baselines of the model zoo, the seed studies' ladder from bigram to transformer.

    bigram        a learned V x V table of logits (makemore part 1, the neural version)
    count_bigram  the same table counted from data, add-k smoothed; trained by `fit`, not SGD
    mlp           k-gram MLP over concatenated embeddings or one-hot vectors (Bengio et al. 2003)
    wavenet       hierarchical MLP merging neighbours pairwise (van den Oord et al. 2016; makemore 5)
    bow           causal bag of words: the running mean of the past, then an MLP (makemore)
    lstm, gru     recurrent networks over embeddings (Hochreiter & Schmidhuber 1997; Cho et al. 2014)

Every one honours the LanguageModel contract, so train, eval and generate never branch on it.
Models without positions (all but bow) accept sequences of any length. `register(archs)`
adds them to `model.arch` (build.py calls it). Their own fields (model.ngram, model.input,
model.d_embed, model.activation, model.smoothing) are documented in ModelConfig.

Initialization is `lmlab.model.init.init_weights(model, cfg)` for every Linear and Embedding,
as in the transformer. The recurrent matrices of nn.LSTM / nn.GRU are not Linear modules, so
every scheme leaves them at PyTorch's U(-1/sqrt(D), 1/sqrt(D)), the usual choice for them.
The recurrent models start slowly from the gpt2 scheme's std-0.02 embeddings;
`model.init=torch` with untied embeddings (makemore's setting) suits them better (see
Recurrent).
"""

from lmlab.model.baselines.bow import BagOfWords
from lmlab.model.baselines.common import ACTIVATIONS, Baseline
from lmlab.model.baselines.ngram import INPUTS, Bigram, CountBigram, KGramMLP
from lmlab.model.baselines.recurrent import GRU, LSTM, Recurrent
from lmlab.model.baselines.wavenet import WaveNet

__all__ = ["ACTIVATIONS", "INPUTS", "BagOfWords", "Baseline", "Bigram", "CountBigram", "GRU", "KGramMLP", "LSTM",
           "Recurrent", "WaveNet", "register"]


def register(archs) -> None:
    """Add the baselines to the architecture registry (`model.arch`)."""
    for name, cls in (("bigram", Bigram), ("count_bigram", CountBigram), ("mlp", KGramMLP),
                      ("wavenet", WaveNet), ("bow", BagOfWords), ("lstm", LSTM), ("gru", GRU)):
        archs.register(name)(cls)
