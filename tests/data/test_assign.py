"""Grid assignment, hand cases on a 3 x 3 grid over a 300 x 300 input (cells of 100 px;
slot = row * 3 + col; cell centres at 50, 150, 250)."""
import numpy as np
import pytest

from fassst.data.assign import assign


def _box(cx, cy, half=5):
    return [cx - half, cy - half, cx + half, cy + half]


def _run(boxes, areas, classes=None, crowd=None, grid=3, num_classes=4):
    classes = [0] * len(boxes) if classes is None else classes
    return assign(np.array(boxes, np.float32), classes, areas, grid, num_classes, 300, 300, crowd)


def test_one_instance_gets_its_centre_cell_and_targets():
    a = _run([[10, 20, 50, 90]], [1.0], classes=[2])  # centre (30, 55): row 0, col 0
    assert a.pairs == [(0, 0)] and a.dropped == 0
    np.testing.assert_allclose(a.loc_target[0], [20 / 300, 10 / 300, 90 / 300, 50 / 300], rtol=1e-6)
    assert a.cls_target[0].tolist() == [0, 0, 1, 0]
    assert a.loc_weight[0].tolist() == [1, 1, 1, 1]
    assert not a.cls_target[1:].any() and not a.loc_target[1:].any()
    assert not a.loc_weight[1:].any()


def test_slot_is_row_major():
    a = _run([_box(250, 50), _box(50, 250), _box(150, 250)], [3, 2, 1])
    assert a.pairs == [(2, 0), (6, 1), (7, 2)]


def test_clash_larger_keeps_cell_smaller_takes_nearest_neighbour():
    small, big = _box(180, 140), _box(150, 150, half=40)
    a = _run([small, big], [10.0, 500.0])  # the small one is listed first: size decides
    # small's centre (180, 140): neighbour centres (250, 150) d2 = 5000, (150, 50) d2 = 9000, ...
    assert sorted(a.pairs) == [(4, 1), (5, 0)] and a.dropped == 0


def test_full_neighbourhood_drops_the_smallest():
    boxes = [_box(150, 150)] * 10
    areas = np.arange(10, 0, -1, dtype=float)  # instance 0 is the largest
    a = _run(boxes, areas)
    assert a.dropped == 1
    owners = dict(a.pairs)
    assert owners[4] == 0 and sorted(owners.values()) == list(range(9))  # instance 9 dropped
    assert a.loc_weight.sum() == 9 * 4 and a.cls_target.sum() == 9


def test_corner_has_three_neighbours_ties_go_to_the_lower_slot():
    a = _run([_box(10, 10)] * 5, [5, 4, 3, 2, 1])
    # from (10, 10): slots 1 and 3 are equally near (d2 21200), then 4 (d2 39200)
    assert a.pairs == [(0, 0), (1, 1), (3, 2), (4, 3)] and a.dropped == 1


def test_equal_sizes_lower_index_first():
    a = _run([_box(150, 150), _box(150, 150)], [7.0, 7.0])
    assert dict(a.pairs)[4] == 0


def test_crowd_is_never_assigned_and_does_not_block():
    a = _run([_box(150, 150, half=60), _box(150, 150)], [9000.0, 10.0], crowd=[True, False])
    assert a.pairs == [(4, 1)] and a.dropped == 0


def test_no_instances():
    a = _run(np.zeros((0, 4)), [])
    assert a.pairs == [] and a.dropped == 0 and a.cls_target.shape == (9, 4)
    assert not a.cls_target.any() and not a.loc_weight.any()


def test_centre_on_the_far_edge_stays_in_the_grid():
    a = _run([[200, 200, 300, 300], [299, 0, 300, 2]], [2, 1])
    assert a.pairs == [(2, 1), (8, 0)]


def test_class_out_of_range_is_refused():
    with pytest.raises(ValueError, match="class indices"):
        _run([_box(50, 50)], [1.0], classes=[4])
