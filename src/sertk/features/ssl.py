"""Frozen self-supervised speech encoders (HuBERT, wav2vec2, WavLM, data2vec-audio) as extractors.

Any ``transformers`` model with a wav2vec2-style convolutional front end loads by hub id or local
folder through ``AutoModel.from_pretrained``; transformers is imported on first use. The model is
frozen (``requires_grad=False``), in eval mode, run under ``torch.inference_mode()`` in float32.

Input normalisation follows the model's own feature extractor: ``do_normalize`` from the folder's
``preprocessor_config.json`` when present (zero mean, unit variance per utterance), otherwise it is
inferred from ``config.feat_extract_norm``: "layer" models (wav2vec2/HuBERT/WavLM large, data2vec-
audio) normalise, "group" models (HuBERT-base, wav2vec2-base, WavLM-base) do not, as in fairseq
pre-training. ``normalize=True/False`` overrides both.

Output, at ``sampling_rate / prod(conv_stride)`` = 50 frames/s: ``[frames, dim]`` for
``layers="last"`` or one int, ``[layers, frames, dim]`` for ``"all"`` or a list of ints. Layer
``i`` is ``hidden_states[i]``: 0 is the input of the first transformer layer (the CNN features
projected to ``hidden_size`` plus the convolutional position embedding), ``num_hidden_layers``
is always ``last_hidden_state`` (``"last"``), which for stable-layer-norm ("large") models includes
the encoder's final LayerNorm, as transformers 4.x returned it (5.x returns it before that norm).

Batching never changes an utterance's features: layer-norm wav2vec2, HuBERT and WavLM pad and pass
the attention mask (equal to per-item results within float32 rounding, ~1e-6); every other model
(group-norm front ends normalise over time; data2vec-audio's stacked position convolutions see
the padding) batches only utterances of identical length, which needs no padding.

>>> encoder = SslEncoder("/path/to/hubert-base-ls960", layers="all")  # needs a downloaded checkpoint  # doctest: +SKIP
>>> encoder(signal, 16000).shape  # needs a downloaded checkpoint  # doctest: +SKIP
(13, 149, 768)
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sertk.errors import FeatureError
from sertk.features.base import Extractor, check_number, check_params
from sertk.features.waveform import WaveformEncoderMixin, pad_waveforms

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".safetensors.index.json", ".bin.index.json")
_HASH_MEMO: dict[tuple[str, int, int], str] = {}
# families whose outputs are unchanged by zero padding + attention mask (tested); any other model
# batches only utterances of identical length (data2vec-audio's stacked position convolutions
# and group-norm front ends both leak padding into valid frames)
_PAD_SAFE = {"wav2vec2", "hubert", "wavlm"}


def _file_sha256(path: Path) -> str:
    """Content sha256 of a file, memoised per (path, size, mtime); free for HF-cache blobs."""
    real = path.resolve()
    if re.fullmatch(r"[0-9a-f]{64}", real.name) and real.parent.name == "blobs":
        return real.name  # the hub cache names LFS blobs by their sha256
    stat = real.stat()
    key = (str(real), stat.st_size, stat.st_mtime_ns)
    if key not in _HASH_MEMO:
        digest = hashlib.sha256()
        with open(real, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        _HASH_MEMO[key] = digest.hexdigest()
    return _HASH_MEMO[key]


def model_fingerprint(folder: Path) -> str:
    """sha256 over ``config.json``, ``preprocessor_config.json`` and every weights file in ``folder``."""
    names = sorted(
        p.name
        for p in folder.iterdir()
        if p.name in ("config.json", "preprocessor_config.json")
        or p.name.endswith(_WEIGHT_SUFFIXES)
    )
    lines = "".join(f"{name} {_file_sha256(folder / name)}\n" for name in names)
    return hashlib.sha256(lines.encode()).hexdigest()


def _offline_help(model: str) -> str:
    return (
        f"{model!r} is not a local model folder and could not be loaded from the Hugging Face hub "
        "or its local cache. Without network, download it once on a connected machine "
        f"(`hf download {model} --local-dir DIR`), copy DIR here and pass its path "
        "(e.g. --model DIR); or fill the HF cache and set HF_HUB_OFFLINE=1"
    )


def _resolve_folder(model: str) -> tuple[Path, bool]:
    """``(folder, is_local)``: a local model folder, or the hub-cache snapshot of a hub id."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FeatureError(
                f"model folder {str(path)!r} has no config.json: point --model at a folder "
                "written by save_pretrained (config.json plus model.safetensors)"
            )
        return path.resolve(), True
    if path.exists():
        raise FeatureError(
            f"model path {model!r} is a file; give the folder that holds config.json"
        )
    if not _HUB_ID.match(model) or model.startswith((".", "~")):
        raise FeatureError(f"model folder {model!r} does not exist; check the path")
    from transformers.utils import cached_file

    try:
        folder = Path(cached_file(model, "config.json")).parent
    except (OSError, ValueError) as error:
        raise FeatureError(_offline_help(model)) from error
    try:  # optional: tells whether the model normalises its input
        cached_file(model, "preprocessor_config.json")
    except (OSError, ValueError):
        pass
    return folder, False


def _layer_indices(layers: Any, num_hidden_layers: int) -> tuple[tuple[int, ...], bool]:
    """``(hidden-state indices, stacked)`` for ``"last" | "all" | int | list[int]``."""
    total = num_hidden_layers + 1
    if layers == "last":
        return (num_hidden_layers,), False
    if layers == "all":
        return tuple(range(total)), True
    stacked = isinstance(layers, (list, tuple))
    items = list(layers) if stacked else [layers]
    if not items or isinstance(layers, str):
        raise FeatureError(
            f"layers must be 'last', 'all', an int or a list of ints, got {layers!r}"
        )
    for item in items:
        check_number("layers", item, minimum=-total, maximum=num_hidden_layers)
    return tuple(int(i) % total for i in items), stacked


class SslEncoder(WaveformEncoderMixin, Extractor):
    """Hidden states of a frozen wav2vec2-family encoder (see the module docstring).

    ``device`` and ``max_batch_seconds`` (padded audio per forward pass) are runtime options:
    they do not change the features, so they are not part of ``config()``.
    """

    name = "ssl"

    def __init__(
        self,
        model: str = "facebook/hubert-base-ls960",
        *,
        layers: str | int | list[int] = "last",
        normalize: bool | None = None,
        device: str = "cpu",
        max_batch_seconds: float = 60.0,
    ) -> None:
        if not isinstance(model, (str, os.PathLike)):
            raise FeatureError(f"model must be a hub id or folder path, got {model!r}")
        self.model_name = str(model)
        self.max_batch_seconds = check_number(
            "max_batch_seconds", max_batch_seconds, kind=float, minimum=0.1
        )
        self.device = self._check_device(device)
        folder, local = _resolve_folder(self.model_name)
        self.model = self._load(folder if local else self.model_name, local=local)
        cfg = self.model.config
        if not hasattr(cfg, "conv_stride") or not hasattr(cfg, "conv_kernel"):
            raise FeatureError(
                f"{self.model_name!r} is a {cfg.model_type!r} model, not a wav2vec2-style audio "
                "encoder (HuBERT, wav2vec2, WavLM, data2vec-audio)"
            )
        self.fingerprint = model_fingerprint(folder)
        self._configure(_read_preprocessor(folder), normalize=normalize, layers=layers)

    def _configure(self, preprocessor: dict[str, Any], *, normalize: Any, layers: Any) -> None:
        """Set the attributes that follow from the model config and ``preprocessor_config.json``."""
        cfg = self.model.config
        self.sampling_rate = int(preprocessor.get("sampling_rate", 16000))
        group_norm = any(isinstance(m, torch.nn.GroupNorm) for m in self.model.modules())
        self.pad_batches = cfg.model_type in _PAD_SAFE and not group_norm
        if normalize is None:
            normalize = preprocessor.get("do_normalize", not group_norm)
        if not isinstance(normalize, bool):
            raise FeatureError(f"normalize must be true, false or null, got {normalize!r}")
        self.normalize = normalize
        self.layer_spec = layers
        self.layer_indices, stacked = _layer_indices(layers, cfg.num_hidden_layers)
        self.layers = len(self.layer_indices) if stacked else None
        self.dim = int(cfg.hidden_size)
        self.frame_rate = self.sampling_rate / math.prod(cfg.conv_stride)
        self._kernels = list(zip(cfg.conv_kernel, cfg.conv_stride, strict=True))
        self.min_samples = cfg.conv_kernel[0] + sum(
            (k - 1) * math.prod(cfg.conv_stride[:i]) for i, k in enumerate(cfg.conv_kernel) if i
        )

    @staticmethod
    def _check_device(device: str) -> torch.device:
        try:
            parsed = torch.device(device)
        except (RuntimeError, TypeError) as error:
            raise FeatureError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}") from error
        if parsed.type == "cuda" and not torch.cuda.is_available():
            raise FeatureError(
                "device 'cuda' was asked for but no CUDA GPU is available; use 'cpu'"
            )
        return parsed

    def _load(self, source: Path | str, *, local: bool) -> torch.nn.Module:
        try:
            from transformers import AutoConfig, AutoModel
            from transformers.utils import logging as hf_logging
        except ImportError as error:
            raise FeatureError(
                "SSL features need transformers: pip install 'sertk[ssl]'"
            ) from error
        # the "Loading weights" bars would interleave with sertk's own progress and output
        hf_logging.disable_progress_bar()
        # local_files_only is the per-call HF_HUB_OFFLINE=1: a local folder never touches the network
        try:
            config = AutoConfig.from_pretrained(source, local_files_only=local)
            model = AutoModel.from_pretrained(
                source, config=config, local_files_only=local, dtype=torch.float32
            )
        except OSError as error:
            if local:
                raise FeatureError(
                    f"could not load the model in {str(source)!r}: {error}"
                ) from error
            raise FeatureError(_offline_help(str(source))) from error
        except (ValueError, KeyError) as error:
            raise FeatureError(f"{str(source)!r} is not a supported model: {error}") from error
        model.eval().requires_grad_(False)
        return model.to(self.device)

    def config(self) -> dict[str, Any]:
        """``name``, ``model``, ``layers``, resolved ``normalize`` and the checkpoint ``fingerprint``."""
        layers = self.layer_spec
        if not isinstance(layers, str):
            layers = list(self.layer_indices) if self.layers else self.layer_indices[0]
        return {
            "name": self.name,
            "model": self.model_name,
            "layers": layers,
            "normalize": self.normalize,
            "fingerprint": self.fingerprint,
        }

    def cache_key(self) -> dict[str, Any]:
        """What the features depend on: ``config()`` without the model's path or hub id."""
        return {key: value for key, value in self.config().items() if key != "model"}

    @classmethod
    def from_config(cls, params: dict[str, Any]) -> SslEncoder:
        """Build from ``config()``; a ``fingerprint`` that differs from the loaded checkpoint fails."""
        params = dict(params)
        expected = params.pop("fingerprint", None)
        check_params(cls, params)
        encoder = cls(**params)
        if expected is not None and expected != encoder.fingerprint:
            raise FeatureError(
                f"the checkpoint at {encoder.model_name!r} is not the one these features were made "
                f"with (fingerprint {encoder.fingerprint[:12]} != {str(expected)[:12]}); point "
                "'model' at the original checkpoint"
            )
        return encoder

    def _forward(self, signals: list[np.ndarray]) -> list[np.ndarray]:
        """Run one batch of prepared signals; returns per-item features trimmed to valid frames."""
        lengths, values, mask = pad_waveforms(signals)
        kwargs: dict[str, Any] = {"output_hidden_states": self.layer_spec != "last"}
        if self.pad_batches:
            kwargs["attention_mask"] = torch.from_numpy(mask).to(self.device)
        with torch.inference_mode(), warnings.catch_warnings():
            # WavLM hands torch a bool padding mask with a float position bias; harmless
            warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask")
            out = self.model(torch.from_numpy(values).to(self.device), **kwargs)
            if self.layer_spec == "last":
                hidden = out.last_hidden_state.unsqueeze(1)  # [batch, 1, frames, dim]
            else:
                states = [*out.hidden_states[:-1], out.last_hidden_state]
                hidden = torch.stack([states[i] for i in self.layer_indices], dim=1)
            hidden = hidden.float().cpu().numpy()
        items = [hidden[row, :, : self.num_frames(n)] for row, n in enumerate(lengths)]
        return [np.ascontiguousarray(x if self.layers else x[0]) for x in items]


def _read_preprocessor(folder: Path) -> dict[str, Any]:
    """The folder's ``preprocessor_config.json`` as a dict ({} when absent)."""
    import json

    path = folder / "preprocessor_config.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise FeatureError(f"{path} is not valid JSON ({error}); fix or delete it") from error
