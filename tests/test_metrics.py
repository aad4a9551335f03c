import numpy as np
import pytest

from sertk.errors import SertkError
from sertk.metrics import (
    classification_report,
    confusion_figure,
    curves_figure,
    format_report_md,
    plot_confusion,
    plot_curves,
    summarize,
)

LABELS = ["angry", "happy", "sad"]


def test_report_by_hand():
    # true:  angry x4, happy x2, sad x2 ; three mistakes
    y_true = [0, 0, 0, 0, 1, 1, 2, 2]
    y_pred = [0, 0, 0, 1, 1, 0, 2, 1]
    report = classification_report(y_true, y_pred, LABELS)
    assert report["n"] == 8
    assert report["wa"] == pytest.approx(5 / 8)
    assert report["ua"] == pytest.approx((3 / 4 + 1 / 2 + 1 / 2) / 3)
    assert report["confusion"] == [[3, 1, 0], [1, 1, 0], [0, 1, 1]]  # rows true, cols predicted
    happy = report["per_class"]["happy"]
    assert happy == {
        "precision": pytest.approx(1 / 3),
        "recall": 0.5,
        "f1": pytest.approx(0.4),
        "support": 2,
    }
    f1 = [2 * 0.75 * 0.75 / 1.5, 0.4, 2 * 1 * 0.5 / 1.5]
    assert report["macro_f1"] == pytest.approx(np.mean(f1))
    assert report["absent"] == []


def test_names_and_indices_agree_and_match_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    by_index = classification_report(y_true, y_pred, LABELS)
    names = np.array(LABELS)
    assert classification_report(list(names[y_true]), names[y_pred], LABELS) == by_index
    assert by_index["ua"] == pytest.approx(metrics.balanced_accuracy_score(y_true, y_pred))
    assert by_index["wa"] == pytest.approx(metrics.accuracy_score(y_true, y_pred))
    assert by_index["macro_f1"] == pytest.approx(metrics.f1_score(y_true, y_pred, average="macro"))
    assert by_index["confusion"] == metrics.confusion_matrix(y_true, y_pred).tolist()


def test_absent_class_is_left_out_of_ua_and_macro_f1():
    # "sad" never occurs in y_true but is predicted once
    report = classification_report([0, 0, 1, 1], [0, 2, 1, 1], LABELS)
    assert report["absent"] == ["sad"]
    assert report["ua"] == pytest.approx((0.5 + 1.0) / 2)
    assert report["per_class"]["sad"] == {
        "precision": 0.0,
        "recall": None,
        "f1": None,
        "support": 0,
    }
    never = classification_report([0, 0, 1, 1], [0, 0, 0, 0], LABELS)
    assert (
        never["per_class"]["happy"]["precision"] == 0.0 and never["per_class"]["happy"]["f1"] == 0.0
    )
    assert never["per_class"]["sad"]["precision"] is None  # neither true nor predicted
    assert never["ua"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "labels", "message"),
    [
        ([0, 1], [0], LABELS, "y_true has 2 items but y_pred has 1"),
        ([], [], LABELS, "y_true is empty"),
        ([0, 3], [0, 1], LABELS, "y_true has class index 3, outside 0..2"),
        ([0, 1], [0, -1], LABELS, "y_pred has class index -1"),
        (["angry", "calm"], ["angry", "sad"], LABELS, r"y_true has labels \['calm'\]"),
        ([0.0, 1.0], [0, 1], LABELS, "must hold class indices"),
        ([[0, 1]], [[0, 1]], LABELS, "must be 1-D"),
        ([0], [0], ["a", "a"], "labels must be unique"),
        ([0], [0], [], "non-empty list"),
    ],
)
def test_bad_input(y_true, y_pred, labels, message):
    with pytest.raises(SertkError, match=message):
        classification_report(y_true, y_pred, labels)


def test_summarize_mean_std_and_pooled():
    folds = {
        "spk1": ([0, 0, 1, 2], [0, 1, 1, 2]),
        "spk2": ([0, 1, 1, 2, 2], [0, 1, 0, 2, 0]),
        "spk3": ([2, 2, 1], [2, 2, 1]),
    }
    reports = {name: classification_report(t, p, LABELS) for name, (t, p) in folds.items()}
    summary = summarize(reports)
    ua = [reports[name]["ua"] for name in folds]
    assert summary["folds"] == 3 and summary["labels"] == LABELS
    assert summary["mean"]["ua"] == pytest.approx(np.mean(ua))
    assert summary["std"]["ua"] == pytest.approx(np.std(ua, ddof=1))
    assert summary["per_fold"]["spk2"]["wa"] == pytest.approx(3 / 5)
    all_true = [y for t, _ in folds.values() for y in t]
    all_pred = [y for _, p in folds.values() for y in p]
    assert summary["pooled"] == classification_report(all_true, all_pred, LABELS)
    assert summarize(list(reports.values()))["per_fold"].keys() == {"fold1", "fold2", "fold3"}
    assert summarize([reports["spk1"]])["std"]["ua"] == 0.0


def test_summarize_rejects_mixed_labels():
    a = classification_report([0, 1], [0, 1], ["x", "y"])
    b = classification_report([0, 1], [0, 1], ["y", "x"])
    with pytest.raises(SertkError, match="same ordered labels"):
        summarize([a, b])
    with pytest.raises(SertkError, match="no fold reports"):
        summarize([])


def test_markdown_report():
    summary = summarize([classification_report([0, 1, 2, 2], [0, 1, 2, 1], LABELS)] * 2)
    text = format_report_md(summary, LABELS)
    assert "| UA | 0.8333 ± 0.0000 | 0.8333 |" in text
    assert "| true \\ predicted | angry | happy | sad |" in text
    assert "| sad | 0 | 2 | 2 |" in text  # pooled row of the true class "sad"
    assert "| happy | 0.5000 | 1.0000 | 0.6667 | 2 |" in text
    with pytest.raises(SertkError, match="not"):
        format_report_md(summary, ["sad", "happy", "angry"])


def _ticks(axis_labels):
    return [tick.get_text() for tick in axis_labels]


def _cell_texts(axes):
    return {
        (round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in axes.texts
    }


def test_confusion_plot_uses_labels_in_matrix_order():
    # asymmetric on purpose: row "happy" (true happy) has 3 predicted angry, 1 happy
    matrix = np.array([[5, 0, 0], [3, 1, 0], [0, 0, 2]])
    figure = confusion_figure(matrix, LABELS)
    axes = figure.axes[0]
    assert _ticks(axes.get_yticklabels()) == LABELS  # rows: true
    assert _ticks(axes.get_xticklabels()) == LABELS  # columns: predicted
    assert axes.get_ylabel() == "true" and axes.get_xlabel() == "predicted"
    cells = _cell_texts(axes)
    assert cells[(1, 0)] == "0.75"  # row happy, column angry
    assert cells[(0, 1)] == "0.00"  # row angry, column happy
    assert np.allclose(axes.images[0].get_array(), [[1, 0, 0], [0.75, 0.25, 0], [0, 0, 1]])
    counts = _cell_texts(confusion_figure(matrix, LABELS, normalize=False).axes[0])
    assert counts[(1, 0)] == "3" and counts[(0, 1)] == "0"


def test_confusion_plot_zero_row_and_bad_shape(tmp_path):
    figure = confusion_figure([[2, 0], [0, 0]], ["a", "b"])
    assert _cell_texts(figure.axes[0])[(1, 1)] == "0.00"
    with pytest.raises(SertkError, match="shape"):
        confusion_figure([[1, 2, 3]], ["a", "b"])


def test_plots_are_written(tmp_path):
    path = plot_confusion([[1, 2], [3, 4]], ["a", "b"], tmp_path / "plots" / "cm.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = {
        "epoch": [1, 2, 3],
        "train_loss": [1.0, 0.8, 0.7],
        "valid_loss": [1.1, 0.9, 1.0],
        "valid_ua": [0.4, 0.6, 0.5],
        "valid_wa": [0.5, 0.6, 0.6],
    }
    figure = curves_figure(history, best_epoch=2)
    loss_axes, metric_axes = figure.axes
    assert [line.get_label() for line in loss_axes.get_lines()] == ["train_loss", "valid_loss"]
    assert list(metric_axes.get_lines()[0].get_ydata()) == [0.4, 0.6, 0.5]
    assert plot_curves(history, tmp_path / "curves.png", best_epoch=2).stat().st_size > 1000
    no_valid = {"train_loss": [1.0, 0.5], "valid_ua": [None, None]}
    assert len(curves_figure(no_valid).axes[1].get_lines()) == 0
    with pytest.raises(SertkError, match="train_loss"):
        curves_figure({})
