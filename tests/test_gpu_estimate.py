"""The GPU-hour estimate's arithmetic, on hand-computed cases."""

from benchmarks.gpu_estimate import Table, table_flops

MACS = {"teacher_8": 100, "resnet18": 10, "vgg16": 50}


def test_teacher_and_students():
    table = Table("t", train=10, clips=20, segments=8, teachers=1, students={"resnet18": 2})
    # teacher: 3 passes x 2 epochs x 10 clips + 20 clips of stored outputs, 100 MACs each = 8000;
    # students: 3 x 2 epochs x 10 x 2 students x 3 seeds x 10 MACs = 3600; 2 FLOP per MAC
    assert table_flops(table, MACS, epochs=2, seeds=3) == 2.0 * (8000 + 3600)


def test_fewer_segments_and_shared_teacher():
    three = Table("t", train=8, clips=8, segments=3, teachers=2, students={})
    assert table_flops(three, MACS, epochs=1, seeds=1) == 2.0 * 2 * (3 * 8 + 8) * 100 * 3 / 8
    reused = Table("t", train=8, clips=0, segments=8, teachers=0, students={"vgg16": 1})
    assert table_flops(reused, MACS, epochs=1, seeds=1) == 2.0 * 3 * 8 * 50
