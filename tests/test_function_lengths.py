"""Every function of vskd/ and stages/ fits on a screen (tests/function_lengths.py)."""

from tests.function_lengths import LIMIT, function_lengths


def test_no_function_is_longer_than_the_limit():
    assert [f"{where} ({lines} lines)" for lines, where in function_lengths() if lines > LIMIT] == []


def test_lengths_count_methods_and_nested_functions(tmp_path):
    (tmp_path / "vskd").mkdir()
    (tmp_path / "vskd" / "m.py").write_text("class A:\n    def f(self):\n        def g():\n            pass\n"
                                            "        return g\n")
    assert function_lengths(tmp_path, ("vskd",)) == [(4, "vskd/m.py:2 f"), (2, "vskd/m.py:3 g")]
