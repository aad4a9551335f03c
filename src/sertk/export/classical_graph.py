"""Linear classical models as ONNX graphs, built with the ``onnx`` package's helper API.

The graph repeats :class:`sertk.classical.ClassicalModel`'s numpy arithmetic in float64::

    features float32 [batch, dim]  (utterance-level rows from sertk's extractor)
    -> Cast double -> (x - scaler_mean) / scaler_scale -> Clip(+-clip) -> * column_weight
    -> PCA / LDA projection -> x @ coef.T + intercept
    -> logreg: softmax (binary: sigmoid) | ridge: softmax(d / T) | linear_svm: Platt sigmoids,
       normalised to sum 1
    -> probabilities float32 [batch, classes]

so onnxruntime gives numpy's probabilities to rounding (checked at export,
:func:`verify_classical`).
The other kinds are refused: an RBF SVM and a random forest run with the numpy backend, which
needs neither torch nor scikit-learn either.

>>> from sertk.bundle import DEFAULT_MODEL, load_bundle
>>> model = load_bundle(DEFAULT_MODEL / "members" / "global").build_model()  # the default's global model
>>> entry = export_classical(model, Path("head.onnx"), opset=18)
>>> Path("head.onnx").is_file()
True
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from sertk.errors import BundleError, require
from sertk.inference.onnx import make_session

LINEAR_KINDS = ("ridge", "logreg", "linear_svm")
TOLERANCE = 1e-6  # max |ORT - numpy| of the probabilities (float64 graph)


class _Graph:
    """Nodes and float64 constants of one graph under construction."""

    def __init__(self, helper: Any, numpy_helper: Any) -> None:
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.constants: list[Any] = []
        self.count = 0

    def const(self, value: Any, name: str) -> str:
        array = np.asarray(value, dtype=np.float64)
        self.constants.append(self.numpy_helper.from_array(array, name=name))
        return name

    def const_int(self, value: Any, name: str) -> str:
        array = np.asarray(value, dtype=np.int64)
        self.constants.append(self.numpy_helper.from_array(array, name=name))
        return name

    def op(self, kind: str, *inputs: str, **attributes: Any) -> str:
        self.count += 1
        output = f"{kind.lower()}_{self.count}"
        self.nodes.append(self.helper.make_node(kind, list(inputs), [output], **attributes))
        return output


def export_classical(model: Any, path: Path, *, opset: int) -> dict[str, Any]:
    """Write ``model`` (a ``ClassicalModel`` of a linear kind) as ONNX to ``path``; returns its
    ``bundle.json`` entry. BundleError for the kinds that do not export."""
    if model.kind not in LINEAR_KINDS:
        raise BundleError(
            f"a classical {model.kind!r} model does not export to ONNX: sertk writes the linear "
            f"kinds ({', '.join(LINEAR_KINDS)}) as graphs; run this bundle with the numpy "
            "backend (the default; it needs neither torch nor scikit-learn)"
        )
    onnx = require("onnx", extra="onnx", what="sertk export")
    from onnx import TensorProto, helper, numpy_helper

    graph = _Graph(helper, numpy_helper)
    z = graph.op("Cast", "features", to=TensorProto.DOUBLE)
    decision = _decision(graph, model, z)
    probabilities = _probabilities(graph, model, decision)
    graph.nodes.append(
        helper.make_node("Cast", [probabilities], ["probabilities"], to=TensorProto.FLOAT)
    )
    inputs = [
        helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", model.input_dim])
    ]
    outputs = [
        helper.make_tensor_value_info(
            "probabilities", TensorProto.FLOAT, ["batch", model.num_classes]
        )
    ]
    proto = helper.make_model(
        helper.make_graph(graph.nodes, "sertk_classical", inputs, outputs, graph.constants),
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="sertk",
    )
    onnx.checker.check_model(proto)
    onnx.save_model(proto, str(path))
    return {"name": path.name, "inputs": ["features"], "outputs": ["probabilities"]}


def _decision(graph: _Graph, model: Any, z: str) -> str:
    """``ClassicalModel.transform`` then the linear scores ``[batch, rows]``."""
    a, meta = model.arrays, model.meta
    z = graph.op("Sub", z, graph.const(a["scaler_mean"], "scaler_mean"))
    z = graph.op("Div", z, graph.const(a["scaler_scale"], "scaler_scale"))
    if meta.get("clip") is not None:
        bound = float(meta["clip"])
        z = graph.op("Clip", z, graph.const(-bound, "clip_min"), graph.const(bound, "clip_max"))
    if meta.get("column_weight"):
        z = graph.op("Mul", z, graph.const(a["column_weight"], "column_weight"))
    if meta["projection"] == "pca":
        components = a["pca_components"]
        shift = a["pca_mean"].reshape(1, -1) @ components.T
        z = graph.op("MatMul", z, graph.const(components.T, "pca_components_t"))
        z = graph.op("Sub", z, graph.const(shift, "pca_shift"))
    elif meta["projection"] == "lda":
        z = graph.op("Sub", z, graph.const(a["lda_xbar"], "lda_xbar"))
        scalings = a["lda_scalings"][:, : meta["lda_components"]]
        z = graph.op("MatMul", z, graph.const(scalings, "lda_scalings"))
    scores = graph.op("MatMul", z, graph.const(a["coef"].T, "coef_t"))
    return graph.op("Add", scores, graph.const(a["intercept"], "intercept"))


def _probabilities(graph: _Graph, model: Any, decision: str) -> str:
    """The kind's probabilities from decision values ``[batch, rows]`` (rows 1: binary)."""
    binary = model.arrays["coef"].shape[0] == 1
    kind = model.kind
    if kind == "ridge":
        temperature = float(model.arrays["calibration_temperature"][0])
        if binary:  # scores [-d, d]
            decision = graph.op("Concat", graph.op("Neg", decision), decision, axis=1)
        return graph.op("Softmax", graph.op("Div", decision, graph.const(temperature, "t")), axis=1)
    if kind == "logreg":
        if not binary:
            return graph.op("Softmax", decision, axis=1)
        positive = graph.op("Sigmoid", decision)
    else:  # linear_svm: Platt sigmoid per column, expit(-(a d + b))
        a, b = model.arrays["calibration_a"], model.arrays["calibration_b"]
        scaled = graph.op("Add", graph.op("Mul", decision, graph.const(a, "platt_a")),
                          graph.const(b, "platt_b"))  # fmt: skip
        positive = graph.op("Sigmoid", graph.op("Neg", scaled))
        if not binary:
            total = graph.op("ReduceSum", positive, graph.const_int([1], "axes"), keepdims=1)
            return graph.op("Min", graph.op("Div", positive, total), graph.const(1.0, "one_max"))
    negative = graph.op("Sub", graph.const(1.0, "one"), positive)
    return graph.op("Concat", negative, positive, axis=1)


def verify_classical(
    model: Any, path: Path, *, threads: int | None = None, rows: Any = None
) -> dict[str, Any]:
    """Probabilities of ``path`` (onnxruntime) vs ``model.predict_proba`` (numpy) on random rows
    around the training data's scale and on ``rows``; BundleError beyond ``TOLERANCE``."""
    rng = np.random.default_rng(0)
    a = model.arrays
    scale = a["scaler_scale"] * rng.uniform(0.0, 3.0, size=(64, 1))
    x = a["scaler_mean"] + scale * rng.standard_normal((64, model.input_dim))
    if rows is not None:
        x = np.concatenate([x, np.asarray(rows, dtype=np.float64)])
    x = x.astype(np.float32)  # what the extractor gives
    expected = model.predict_proba(x).astype(np.float32)
    session = make_session(path, threads=threads)
    got = session.run(["probabilities"], {"features": x})[0]
    start = time.perf_counter()
    for row in x[:16]:
        session.run(["probabilities"], {"features": row[None]})
    seconds = (time.perf_counter() - start) / 16
    difference = float(np.max(np.abs(got - expected)))
    if not difference <= TOLERANCE:
        raise BundleError(
            f"the exported classical graph differs from numpy by {difference:.3g} in "
            f"probabilities (tolerance {TOLERANCE:g}); refusing to write it"
        )
    return {
        "tolerance": TOLERANCE,
        "max_abs_probabilities": difference,
        "rows": int(len(x)),
        "microseconds_per_row": round(seconds * 1e6, 1),
    }
