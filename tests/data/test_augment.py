"""Augmentation: seeded, modest, and the colour jitter's definitions on a real photo."""
import numpy as np

from fassst.data.augment import color_jitter, draw_flip, draw_jitter
from fassst.data.coco_dataset import CocoDataset
from fassst.datasets.sample_data import ensure_sample_data


def test_draws_are_fixed_by_the_seed_and_within_range():
    def draws():
        rngs = (np.random.default_rng([7, 1, p]) for p in range(50))
        return [(draw_flip(r), draw_jitter(r)) for r in rngs]
    a = draws()
    assert a == draws()
    assert 10 < sum(f for f, _ in a) < 40  # both outcomes occur
    factors = np.array([j for _, j in a])
    assert factors.min() >= 0.8 and factors.max() <= 1.2


def test_color_jitter_on_a_real_photo():
    image = CocoDataset(*ensure_sample_data()).load(0).image
    np.testing.assert_array_equal(color_jitter(image, (1.0, 1.0, 1.0)), image)
    brighter = color_jitter(image, (1.2, 1.0, 1.0)).astype(float)
    np.testing.assert_allclose(brighter, np.clip(np.floor(image * 1.2 + 0.5), 0, 255), atol=1)
    grey = color_jitter(image, (1.0, 1.0, 0.0)).astype(int)
    assert np.abs(grey[..., 0] - grey[..., 1]).max() <= 1  # no saturation: grey
    flat = color_jitter(image, (1.0, 0.0, 1.0))
    assert np.ptp(flat) <= 1  # no contrast: the mean grey everywhere
    modest = color_jitter(image, (1.2, 0.8, 1.2)).astype(int) - image
    assert np.abs(modest).mean() < 40
