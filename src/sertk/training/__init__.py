"""A plain, visible PyTorch training loop with validation-based checkpoints and exact resume.

A dataset is any sequence of ``(features, label)`` with ``features`` an array ``[frames, dim]``
(or ``[layers, frames, dim]``) and ``label`` a class index; a dataset may also expose ``labels``
(a sequence of class indices) so that class weights and balanced sampling need not load
features, and ``set_epoch(epoch)`` (0-based), called before each training pass, so on-the-fly
augmentation can seed itself per epoch. Each epoch: train on shuffled, padded batches -> score
the VALIDATION set (never the test set) -> keep ``best.safetensors`` when validation UA
improves -> write the resumable ``last.safetensors``. Training stops after ``epochs`` or
``patience`` epochs without a better validation UA, and the model returned carries the best
epoch's weights.

Imbalance: ``TrainConfig.class_weights`` weights the loss by ``n / (classes * count_c)`` of the
training labels; ``TrainConfig.balanced_sampling`` draws batches with a class-balanced
``WeightedRandomSampler`` instead.

Checkpoints (in ``out_dir/checkpoint``, see :mod:`sertk.training.checkpoint`) are safetensors
only, never pickle; one atomic ``os.replace`` commits a whole checkpoint, so an interruption at
any moment leaves the previous one intact. ``last.json`` is a human-readable copy of its
metadata.

Modules: ``loop`` (``train_model``), ``data`` (``collate``, ``predict``, ``class_weights``,
loaders), ``checkpoint``, ``distributed`` (``data_parallel``: the same loop on N processes with
torch DDP); ``fit_normalization`` lives in :mod:`sertk.features.normalization` (numpy only); padding in
:mod:`sertk.models.batching`.

>>> result = train_model(model, train_set, valid_set, config=TrainConfig(epochs=20),
...                      labels=["neutral", "angry"], out_dir="runs/x")  # needs a corpus  # doctest: +SKIP
>>> result.best_epoch, result.history["valid_ua"][result.best_epoch - 1]  # needs a corpus  # doctest: +SKIP
"""

from sertk.features.normalization import fit_normalization
from sertk.training.checkpoint import CHECKPOINT_VERSION
from sertk.training.data import class_weights, collate, predict
from sertk.training.distributed import data_parallel
from sertk.training.loop import TrainResult, _learning_rate, seed_everything, train_model

__all__ = [
    "CHECKPOINT_VERSION",
    "TrainResult",
    "_learning_rate",
    "class_weights",
    "collate",
    "data_parallel",
    "fit_normalization",
    "predict",
    "seed_everything",
    "train_model",
]
