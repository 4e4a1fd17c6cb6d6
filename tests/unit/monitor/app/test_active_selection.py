"""Active selection, the region-head refit and the labelling queue, on small made-up data."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.app.head_fit import RegionLabels, fit_head, region_probs
from monitor.app.label_queue import build_queue, pool
from monitor.app.retrain import next_version
from monitor.app.selection import kmeans, select, uncertainty
from monitor.core.samples import SampleMeta, SampleStore
from monitor.inference.candidate import frame_score
from monitor.inference.detectors.block_corruption import corrupted_share


def test_the_frame_score_flags_exactly_where_the_area_decision_does() -> None:
    rng = np.random.default_rng(0)
    maps = rng.random((200, 1, 6, 10)) ** 3
    for t in (0.3, 0.6, 0.9):
        assert np.array_equal(frame_score(maps[:, 0], 0.07) >= t, corrupted_share(maps, t) > 0.07)


def test_uncertainty_is_highest_at_the_threshold() -> None:
    unsure = uncertainty(np.array([0.89, 0.5, 0.999, 0.9]), 0.9)
    assert list(np.argsort(-unsure)) == [3, 0, 1, 2]  # in logit: 0.5 is nearer 0.9 than 0.999


def test_the_seed_rule_takes_one_per_cluster_from_the_uncertain_half() -> None:
    """Three tight clusters of uncertain points (and a sure crowd): one pick from each,
    where uncertainty alone would spend the budget on the largest cluster."""
    rng = np.random.default_rng(1)
    centres = np.eye(3, 8) * 10
    sizes = (40, 5, 5)
    points = np.concatenate(
        [c + rng.normal(0, 0.1, (n, 8)) for c, n in zip(centres, sizes, strict=True)]
    )
    sure = rng.normal(0, 0.1, (60, 8)) + 5
    embeddings = np.concatenate([points, sure])
    unsure = np.concatenate([np.linspace(-0.1, -0.2, 40), [-0.3] * 10, np.full(60, -5.0)])
    chosen = select(embeddings, unsure, 3, "seed", np.random.default_rng(2))
    assert len(chosen) == 3 and all(i < 50 for i in chosen)
    clusters = {0 if i < 40 else 1 if i < 45 else 2 for i in chosen}
    assert clusters == {0, 1, 2}
    assert set(select(embeddings, unsure, 3, "uncertainty")) == {0, 1, 2}
    assert len(set(select(embeddings, unsure, 3, "random", np.random.default_rng(3)))) == 3


def test_the_refit_keeps_the_head_without_labels_and_follows_them_with_some() -> None:
    rng = np.random.default_rng(4)
    w0, b0 = rng.normal(0, 0.1, 6), -1.0
    same = fit_head(w0, b0, RegionLabels.join([]))
    assert np.array_equal(same[0], w0) and same[1] == b0
    x = rng.normal(0, 1, (400, 6))
    y = (x[:, 0] > 0).astype(float)
    w, b = fit_head(w0, b0, RegionLabels(x, y, np.ones(400)))
    accuracy = float(((region_probs(x, w, b) > 0.5) == (y > 0)).mean())
    assert accuracy > 0.9 and float(((region_probs(x, w0, b0) > 0.5) == (y > 0)).mean()) < 0.7


def test_the_queue_leaves_out_answered_candidates_and_orders_by_uncertainty(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = SampleStore(tmp_path)
    for seq, score in enumerate((0.2, 0.88, 0.95, 0.5)):
        meta = SampleMeta(
            channel_id="c", seq=seq, media_start=seq, media_end=seq, detectors=["block_corruption"],
            container="png", frame_time=float(seq), score=score, threshold=0.9,
            embedding=[float(seq), 1.0], region_prob=[[score]],
        )  # fmt: skip
        store.put(meta, b"png")
    metas = pool(store, "block_corruption", answered={("c", 0)})
    assert [m.seq for m in metas] == [1, 2, 3]
    queue = build_queue(metas, "block_corruption", 2, "uncertainty", now=1.0)
    assert [i.seq for i in queue.items] == [1, 2] and queue.pool == 3
    assert pool(store, "audio_artifact", set()) == []


@pytest.mark.parametrize(("old", "new"), [("2.1.0", "2.1.1"), ("2.1.9", "2.1.10"), ("x", "x.1")])
def test_a_retrained_model_is_the_next_patch_version(old: str, new: str) -> None:
    assert next_version(old) == new


def test_kmeans_finds_separated_blobs_and_fills_every_cluster() -> None:
    rng = np.random.default_rng(5)
    centres = rng.normal(0, 20, (6, 4))
    points = np.concatenate([c + rng.normal(0, 0.5, (30, 4)) for c in centres])
    found, member = kmeans(points, 6, np.random.default_rng(6))
    assert len(np.unique(member)) == 6
    for blob in range(6):  # each blob is one cluster, whole
        assert len(np.unique(member[blob * 30 : (blob + 1) * 30])) == 1
    assert np.abs(np.sort(found[:, 0]) - np.sort(centres[:, 0])).max() < 1.0


def test_the_learning_commands_refuse_what_they_cannot_do(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from monitor.app.cli import app

    monkeypatch.setenv("VQM_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("VQM_MODEL_DIR", raising=False)
    run = CliRunner().invoke
    result = run(app, ["label", "queue", "block_corruption"])
    assert result.exit_code == 1 and "no annotation candidates" in result.output
    result = run(app, ["label", "queue", "block_corruption", "--strategy", "best"])
    assert result.exit_code == 2 and "seed, uncertainty, random" in result.output
    result = run(app, ["retrain", "audio_artifact", "--models", str(tmp_path)])
    assert result.exit_code == 2 and "only block_corruption" in result.output
    result = run(app, ["retrain", "block_corruption"])
    assert result.exit_code == 2 and "read-only" in result.output
    result = run(app, ["retrain", "block_corruption", "--models", str(tmp_path)])
    assert result.exit_code == 1 and "no operator labels" in result.output


def test_stacked_scores_are_each_frames_own_score_in_order() -> None:
    from monitor.app.block_features import FrameView, stacked, stacked_scores

    rng = np.random.default_rng(7)
    shapes = [(6, 10), (11, 20), (6, 10)]
    views = [FrameView(rng.normal(0, 1, (*s, 4)).astype(np.float32), np.zeros(s)) for s in shapes]
    w, b = rng.normal(0, 1, 4), 0.2
    alone = [frame_score(region_probs(v.features, w, b)[None], 0.07)[0] for v in views]
    np.testing.assert_allclose(stacked_scores(stacked(views), w, b, 0.07), alone)
