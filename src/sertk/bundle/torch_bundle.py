"""Torch bundles: a ``sertk.models`` head's weights in safetensors plus its hyper-parameters.

``model.safetensors`` holds the state dict, ``normalization.safetensors`` (optional) the global
per-dimension mean/std of the features the head was trained on. Reading one needs torch (the
``neural`` extra); its ONNX export runs without it (``load_bundle(path, backend="onnx")``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sertk._version import __version__
from sertk.augment import View
from sertk.bundle.base import Bundle, Runtime, base_document
from sertk.bundle.contract import InferenceContract
from sertk.bundle.files import (
    NORMALIZATION_FILE,
    WEIGHTS_FILE,
    entry_path,
    file_entry,
    read_normalization,
    write_arrays,
    write_bundle_dir,
)
from sertk.bundle.population import check_adaptation, check_priors, write_population
from sertk.errors import BundleError, MissingDependencyError, SertkError, require
from sertk.features.normalization import Adaptation
from sertk.inference import Scorer
from sertk.inference.backends import TorchForward


@dataclasses.dataclass(frozen=True, eq=False)
class TorchBundle(Bundle):
    """A torch head: ``state_dict`` (CPU tensors), the global ``normalization`` statistics
    (``mean``/``std`` float32 ``[dim]`` or ``[layers, dim]``, or None) and the ``models`` it
    was read with (None: ``sertk.models.MODELS``)."""

    kind: ClassVar[str] = "torch"
    state_dict: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    normalization: dict[str, np.ndarray] | None = None
    models: Mapping[str, Callable[..., Any]] | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def read(
        cls, path: Path, document: dict[str, Any], *,
        models: Mapping[str, Callable[..., Any]] | None = None, **_: Any,
    ) -> TorchBundle:  # fmt: skip
        """Read the weights and rebuild the model once, so a mismatch surfaces now."""
        check_torch_model(document, path)
        name = document["model"]["name"]
        try:
            require("torch", extra="neural", what=f"bundle {path} (a torch {name!r} model)")
        except MissingDependencyError as error:
            raise MissingDependencyError(
                f"{error}; or export it to ONNX where torch is installed (sertk export {path} "
                "-o OUT --format onnx) and run that with --backend onnx"
            ) from None
        files = document["files"]
        bundle = cls(
            **Bundle.common(path, document),
            state_dict=read_weights(path, files.get("weights")),
            normalization=read_normalization(path, files.get("normalization")),
            models=models,
        )
        bundle.build_model()
        return bundle

    def build_model(self, *, models: Mapping[str, Callable[..., Any]] | None = None) -> Any:
        """``models[model_name](**hparams)`` (default: those the bundle was read with) with the
        weights, in eval mode; BundleError when they do not fit."""
        return build_torch_model(self, models or self.models)

    def make_scorer(self, runtime: Runtime) -> Scorer:
        extractor = runtime.extractor
        if (
            extractor is None
            and runtime.device != "cpu"
            and (self.features or {}).get("name") == "ssl"
        ):
            extractor = self.build_extractor(device=runtime.device)  # runtime-only: same features
        forward = TorchForward(
            self.build_model(), device=runtime.device, batch_size=runtime.batch_size
        )
        return self.model_scorer(forward, extractor, self.normalization)


def save_bundle(
    path: str | Path,
    *,
    model: Any,
    model_name: str,
    labels: Sequence[str],
    label_map: Any,
    features: Any,
    preprocess: Any,
    normalization: Mapping[str, Any] | None = None,
    speaker_adapted: bool = False,
    views: Sequence[View] = (),
    adaptation: Adaptation | None = None,
    population: Any = None,
    training: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    hparams: Mapping[str, Any] | None = None,
) -> Path:
    """Write a torch bundle directory atomically (replacing a bundle there); returns its path.

    ``model`` is a ``torch.nn.Module``; ``label_map``, ``features`` and ``preprocess`` may be
    objects (``LabelMap``, an extractor, ``Preprocess``) or their dicts; ``hparams`` defaults to
    ``model.hparams``. ``normalization`` holds the global ``mean`` and ``std`` arrays ``[dim]``
    (or ``[layers, dim]``); ``speaker_adapted``, ``views`` and ``adaptation`` complete the
    inference contract (``population``: see :func:`sertk.bundle.save_classical_bundle`).
    """
    contract = InferenceContract.of(
        features, preprocess, speaker_adapted=speaker_adapted, views=views, adaptation=adaptation
    )
    priors = check_priors(population)
    check_adaptation(adaptation, priors, speaker=speaker_adapted)
    document = base_document("torch", labels, label_map, contract, training=training, extra=extra)
    hparams = dict(getattr(model, "hparams", {}) if hparams is None else hparams)
    if not hparams:
        raise BundleError("the model has no hparams; pass hparams= so the bundle can rebuild it")
    if hparams.get("num_classes", len(labels)) != len(labels):
        raise BundleError(
            f"model has num_classes={hparams['num_classes']} but {len(labels)} labels"
        )
    if getattr(model, "name", model_name) != model_name:
        raise BundleError(f"model_name {model_name!r} differs from the model's name {model.name!r}")
    document["model"] = {"name": model_name, "hparams": hparams}
    weights = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    stats = None if normalization is None else check_normalization(normalization)

    def fill(folder: Path) -> dict[str, Any]:
        import safetensors.torch  # torch: the weights are tensors

        safetensors.torch.save_file(weights, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
        files = {"weights": file_entry(folder / WEIGHTS_FILE)}
        if stats is not None:
            files["normalization"] = write_arrays(stats, folder / NORMALIZATION_FILE)
        if priors:
            files["population"] = write_population(priors, folder)
        return files

    return write_bundle_dir(Path(path), document, fill)


def check_normalization(normalization: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """``mean``/``std`` as float32 arrays ``[dim]`` or ``[layers, dim]``; BundleError if bad."""
    if set(normalization) != {"mean", "std"}:
        raise BundleError(
            f"normalization needs exactly 'mean' and 'std'; got {sorted(normalization)}"
        )
    mean, std = (np.array(normalization[k], dtype=np.float32) for k in ("mean", "std"))
    if mean.shape != std.shape or mean.ndim not in (1, 2):
        raise BundleError(
            f"normalization mean {mean.shape} and std {std.shape} must match, [dim] or [layers, dim]"
        )
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
        raise BundleError("normalization statistics must be finite with std > 0")
    return {"mean": mean, "std": std}


def check_torch_model(document: dict[str, Any], path: Path) -> None:
    """The ``model`` section of a torch bundle: ``num_classes`` agrees with the labels."""
    num_classes = document["model"]["hparams"].get("num_classes", len(document["labels"]))
    if num_classes != len(document["labels"]):
        raise BundleError(
            f"{path / 'bundle.json'}: the model has num_classes={num_classes} but "
            f"{len(document['labels'])} labels are listed"
        )


def read_weights(path: Path, entry: Any) -> dict[str, Any]:
    """The torch state dict of ``files.weights`` (CPU tensors)."""
    import safetensors.torch  # torch: the weights become tensors

    file = entry_path(path, entry, "weights")
    try:
        return safetensors.torch.load_file(str(file), device="cpu")
    except Exception as error:  # safetensors raises its own SafetensorError for damaged files
        raise BundleError(f"{file} is not a readable safetensors file: {error}") from None


def build_torch_model(bundle: Any, models: Mapping[str, Callable[..., Any]] | None = None) -> Any:
    """Rebuild ``models[model_name](**hparams)`` (default ``sertk.models.MODELS``), load the
    weights and return it in eval mode; BundleError when they do not fit.

    The model is first built on torch's ``meta`` device (shapes, no memory) and compared with
    the weights, so hyper-parameters that would size huge arrays fail here, not in an
    allocation."""
    import torch

    if models is None:
        from sertk.models import MODELS as models  # torch
    if bundle.model_name not in models:
        raise BundleError(
            f"{bundle.path}: model {bundle.model_name!r} is not known to this sertk "
            f"({__version__}; models: {', '.join(sorted(models))}); upgrade sertk"
        )
    try:
        with torch.device("meta"):
            shapes = models[bundle.model_name](**bundle.hparams)
    except (SertkError, TypeError, ValueError) as error:
        raise BundleError(
            f"{bundle.path}: cannot rebuild model {bundle.model_name!r} from its hparams: {error}"
        ) from None
    except (NotImplementedError, RuntimeError):  # a model that cannot be built on meta
        shapes = None
    if shapes is not None:
        _check_weights(shapes, bundle.state_dict, bundle.path)
    try:
        model = models[bundle.model_name](**bundle.hparams)
    except (SertkError, TypeError, ValueError) as error:
        raise BundleError(
            f"{bundle.path}: cannot rebuild model {bundle.model_name!r} from its hparams: {error}"
        ) from None
    _check_weights(model, bundle.state_dict, bundle.path)
    outputs = _num_outputs(model)
    if outputs is not None and outputs != len(bundle.labels):
        raise BundleError(
            f"{bundle.path}: the model has {outputs} outputs but the bundle lists "
            f"{len(bundle.labels)} labels; the bundle is inconsistent, re-export it"
        )
    model.load_state_dict(bundle.state_dict)
    return model.eval()


def _check_weights(model: Any, weights: Mapping[str, Any], path: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    shapes = [
        f"{name} {tuple(weights[name].shape)} vs {tuple(expected[name].shape)}"
        for name in expected
        if name in weights and weights[name].shape != expected[name].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing weights: {', '.join(missing[:5])}")
    if unexpected:
        problems.append(f"unexpected weights: {', '.join(unexpected[:5])}")
    if shapes:
        problems.append(f"shape mismatch (bundle vs model): {'; '.join(shapes[:5])}")
    if problems:
        raise BundleError(
            f"{path}: weights do not fit model {type(model).__name__} built from the bundle's "
            f"hparams ({'; '.join(problems)}); the bundle is inconsistent, re-export it"
        )


def _num_outputs(model: Any) -> int | None:
    """Classifier outputs: ``hparams['num_classes']`` or the last Linear layer's width."""
    from torch import nn  # torch

    hparams = getattr(model, "hparams", None)
    if isinstance(hparams, Mapping) and isinstance(hparams.get("num_classes"), int):
        return hparams["num_classes"]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else None
