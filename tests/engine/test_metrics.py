"""Metrics on hand-made logits with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from actionrec.engine.metrics import confusion_matrix, per_class_accuracy, softmax, summarize, topk_accuracy


def test_topk_known_numbers() -> None:
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    labels = np.array([1, 1, 0, 2])
    assert topk_accuracy(scores, labels, 1) == pytest.approx(0.25)  # only row 0
    assert topk_accuracy(scores, labels, 2) == pytest.approx(0.5)  # rows 0 and 1
    assert topk_accuracy(scores, labels, 3) == pytest.approx(1.0)
    assert topk_accuracy(scores, labels, 5) == pytest.approx(1.0)  # k > K is clamped


def test_confusion_and_per_class() -> None:
    cm = confusion_matrix(np.array([0, 1, 1, 2, 2, 2]), np.array([0, 0, 1, 2, 2, 1]), 4)
    assert cm.tolist() == [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 2, 0], [0, 0, 0, 0]]
    pc = per_class_accuracy(cm)
    assert pc[:3].tolist() == [0.5, 0.5, 1.0] and np.isnan(pc[3])


def test_summarize_clip_vs_video_level() -> None:
    # 2 videos x 3 views x 3 classes. Video 0 (label 0): views predict 0, 1, 0 -> clip 2/3, video right.
    # Video 1 (label 2): views predict 1 (weakly), 2 (strongly), 1 (weakly) -> clip 1/3, video right (softmax mean).
    logits = np.array(
        [
            [[3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [3.0, 0.0, 0.0]],
            [[0.0, 0.6, 0.5], [0.0, 0.0, 9.0], [0.0, 0.6, 0.5]],
        ]
    )
    m = summarize(logits, np.array([0, 2]))
    assert m.num_videos == 2 and m.num_views == 3
    assert m.clip_top1 == pytest.approx(3 / 6)
    assert m.video_top1 == pytest.approx(1.0)
    assert m.video_top5 == pytest.approx(1.0)
    assert m.confusion.tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 1]]
    assert m.mean_class_accuracy == pytest.approx(1.0)
    np.testing.assert_allclose(softmax(np.array([[0.0, np.log(3.0)]])), [[0.25, 0.75]])


def test_summarize_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="labels"):
        summarize(np.zeros((2, 1, 3)), np.array([0, 1, 2]))
