#!/usr/bin/env python3
"""Checks a conversion of make_synthetic.py's file against the source, with numpy alone.

    python3 tests/era5/check.py SOURCE.nc DIR --levels 500,850,1000 --coarsen 2 [--expected FRAMES]

Reads the source with netCDF4 (not xarray, which the converter uses), builds the expected
fields by hand (latitudes flipped north to south, longitudes rolled to start at 0, levels
selected, every 2nd row and column), and compares them with the chunk files read with
numpy.fromfile: equal to the bit in f32, to bf16's rounding in bf16. The statistics in
stats.npz are compared with numpy's mean and std over the same values (relative 1e-5).
With --expected, writes DIR/expected.npz: a few frames of the source as the C++ reader must
return them (tests/tools/test_weather_dataset.cpp).
"""
import argparse
import json
import os
import sys

import netCDF4
import numpy as np


def fail(message):
    print("check: FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("source")
    p.add_argument("dir")
    p.add_argument("--levels", required=True)
    p.add_argument("--coarsen", type=int, required=True)
    p.add_argument("--expected", help="comma-separated times to write into DIR/expected.npz")
    args = p.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    desc = json.load(open(os.path.join(args.dir, "dataset.json")))
    src = netCDF4.Dataset(args.source)
    lat, lon = src["latitude"][:], src["longitude"][:]
    lat_idx = np.argsort(-lat)
    lon_idx = np.argsort(lon % 360.0)
    f = args.coarsen
    if not np.allclose(desc["grid"]["latitudes"], lat[lat_idx][::f]) or \
            not np.allclose(desc["grid"]["longitudes"], (lon[lon_idx] % 360.0)[::f]):
        fail("grid differs")
    src_levels = [int(x) for x in src["level"][:]]
    fields = []
    names = []
    for v in desc["variables"]:
        x = np.asarray(src[v["name"]][:], dtype=np.float32)
        if v["levels"]:
            x = x[:, [src_levels.index(l) for l in levels]]
            names += ["%s@%d" % (v["name"], l) for l in levels]
        else:
            x = x[:, None]
            names.append(v["name"])
        x = x[:, :, lat_idx][:, :, :, lon_idx][:, :, ::f, ::f]
        fields.append(np.moveaxis(x, 1, -1))
    expected = np.concatenate(fields, axis=-1)  # [time, lat, lon, channel]
    if expected.shape[0] != desc["time"]["count"]:
        fail("time count %d, source %d" % (desc["time"]["count"], expected.shape[0]))

    got = []
    per = desc["chunks"]["times"]
    for k, name in enumerate(desc["chunks"]["files"]):
        raw = open(os.path.join(args.dir, name), "rb").read()
        header = np.frombuffer(raw[:64], dtype="<i8")
        first, count = int(header[2]), int(header[3])
        if raw[:8] != b"GCWXCHK1" or first != k * per:
            fail("%s: header" % name)
        if desc["dtype"] == "f32":
            values = np.frombuffer(raw[64:], dtype="<f4")
        else:
            values = (np.frombuffer(raw[64:], dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        got.append(values.reshape(count, *expected.shape[1:]))
    got = np.concatenate(got)
    if desc["dtype"] == "f32":
        if not np.array_equal(got, expected):
            bad = np.argwhere(got != expected)[0]
            fail("value at %s: %r, source %r" % (bad, got[tuple(bad)], expected[tuple(bad)]))
    else:
        err = np.max(np.abs(got - expected) / np.maximum(np.abs(expected), 1e-30))
        if err > 2.0 ** -8:
            fail("bf16 values differ from the source by %g relative (> 2^-8)" % err)
    print("check: %d values equal the source (%s)" % (got.size, "bitwise" if desc["dtype"] == "f32"
                                                       else "bf16: within 2^-8 relative"))

    stats = np.load(os.path.join(args.dir, "stats.npz"))
    x64 = expected.astype(np.float64)
    worst = 0.0
    c = 0
    for v in desc["variables"]:
        n = len(levels) if v["levels"] else 1
        sl = x64[..., c:c + n]
        d = np.diff(sl, axis=0)
        for key, ref in (("mean", sl.mean(axis=(0, 1, 2))), ("stddev", sl.std(axis=(0, 1, 2))),
                         ("diffs_stddev", d.std(axis=(0, 1, 2)))):
            have = np.atleast_1d(stats["%s/%s" % (key, v["name"])]).astype(np.float64)
            rel = np.max(np.abs(have - ref) / np.abs(ref))
            worst = max(worst, rel)
            if rel > 1e-6:
                fail("%s/%s: %s, numpy %s" % (key, v["name"], have, ref))
        c += n
    for s in desc.get("static", []):
        x = np.asarray(src[s["name"]][:], dtype=np.float32)[lat_idx][:, lon_idx][::f, ::f].astype(np.float64)
        if abs(float(stats["mean/" + s["name"]]) - x.mean()) > 1e-6 * abs(x.mean()) or \
                abs(float(stats["stddev/" + s["name"]]) - x.std()) > 1e-6 * x.std():
            fail("statistics of %s" % s["name"])
        if not np.array_equal(np.load(os.path.join(args.dir, "static.npz"))[s["name"]], x.astype(np.float32)):
            fail("static field %s" % s["name"])
    print("check: statistics equal numpy's to %.2g relative (bound 1e-6)" % worst)

    if args.expected:
        times = [int(t) for t in args.expected.split(",")]
        out = {"times": np.array(times, dtype=np.int64)}
        for t in times:
            out["frame/%d" % t] = np.ascontiguousarray(expected[t])
        for s in desc.get("static", []):
            out["static/" + s["name"]] = np.ascontiguousarray(np.load(os.path.join(args.dir, "static.npz"))[s["name"]])
        np.savez(os.path.join(args.dir, "expected.npz"), **out)


if __name__ == "__main__":
    main()
