"""Writes the small .npz files of tests/tools/test_npz.cpp with NumPy (run from this folder).

basic.npz      every dtype gc reads, odd shapes, 0-d values as np.savez stores Python
               scalars and strings (int -> '<i8', float -> '<f8', bool -> '|b1', str -> '<U..');
compressed.npz the same written by np.savez_compressed (refused);
object.npz     an object array (refused: gc never unpickles);
fortran.npz    a Fortran-ordered array (refused);
big_endian.npz a ">f4" array (refused);
bad_graphs.npz see its end.
"""
import numpy as np

arrays = {
    "f32": np.arange(6, dtype=np.float32).reshape(2, 3) * 0.5 - 1,
    "f64": np.array([1.5, -2.25, 1e300]),
    "i32": np.array([[-1], [2], [2147483647]], dtype=np.int32),
    "i64": np.array([-(2**40), 7], dtype=np.int64),
    "b1": np.array([True, False, True]),
    "scalar_int": 12,
    "scalar_float": 0.6180339887498949,
    "scalar_bool": True,
    "text": "12h",
    "text_unicode": "gc \u00e9\u20ac\U0001F600",
    "empty": np.zeros((0, 4), dtype=np.float32),
    "four_d": np.arange(2 * 3 * 1 * 5, dtype=np.float32).reshape(2, 3, 1, 5),
    "a:b/~/c:w": np.ones((1,), dtype=np.float32),
}
np.savez("basic.npz", **arrays)
np.savez_compressed("compressed.npz", **arrays)
np.savez("object.npz", o=np.array([{"a": 1}], dtype=object))
np.savez("fortran.npz", f=np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
np.savez("big_endian.npz", b=np.arange(3, dtype=">f4"))

# bad_graphs.npz: DeepMind's graphs (tests/data/deepmind/graphs.npz) with one
# mesh2grid receiver outside the grid (refused by --graphs).
graphs = dict(np.load("../deepmind/graphs.npz"))
graphs = {k: v for k, v in graphs.items() if not k.endswith("_edge_features")}
graphs["mesh2grid_receivers"] = graphs["mesh2grid_receivers"].copy()
graphs["mesh2grid_receivers"][7] = 684
np.savez("bad_graphs.npz", **graphs)
