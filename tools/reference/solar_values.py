#!/usr/bin/env python3
"""Prints DeepMind's TOA incident solar radiation in f64 at a few points, as C++ rows.

tests/tools/test_solar.cpp holds the printed table (kDeepMindF64): each row is
{seconds since 1970, lat deg, lon deg, J/m^2, days since J2000} from graphcast.solar_radiation at the commit
pinned in export_graphs.py, run with jax_enable_x64 so that nothing is rounded to f32
(DeepMind's own runs are f32: tests/data/deepmind/forcings.npz holds those). The points cover
both hemispheres, the poles' neighbourhood, night (0), the TSI table's clamped ends (before
1951.5 and after 2034.5) and a leap year.

  /work/venv-ref/bin/python tools/reference/solar_values.py --graphcast-src /tmp/graphcast-ref
"""

import argparse
import sys

import numpy as np
import pandas as pd

POINTS = (
    ("2016-01-01T12:00:00", 51.5, 0.0),
    ("2016-01-01T12:00:00", -33.9, 18.4),
    ("2016-01-01T18:00:00", -89.0, 200.0),
    ("1979-06-21T06:00:00", 89.0, 123.0),
    ("1979-06-21T06:00:00", 40.0, 100.0),
    ("1950-03-01T09:30:00", 10.0, 45.0),
    ("2020-02-29T23:00:00", -20.0, 170.0),
    ("2020-03-20T18:00:00", 0.0, 300.0),
    ("2023-12-31T23:00:00", -75.0, 359.75),
    ("2040-07-01T15:00:00", 60.0, 250.0),
    ("2016-01-01T00:00:00", 51.5, 0.0),
    ("2016-01-01T12:00:00", 51.5, 305.0),  # sunrise within the hour: partly dark
)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--graphcast-src", required=True)
  args = parser.parse_args()
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_enable_x64", True)
  sys.path.insert(0, args.graphcast_src)
  from graphcast import solar_radiation  # pylint: disable=g-import-not-at-top

  for when, lat, lon in POINTS:
    value = solar_radiation.get_toa_incident_solar_radiation(
        [pd.Timestamp(when)], np.array([lat]), np.array([lon]))
    value = np.asarray(value, dtype=np.float64)
    assert value.dtype == np.float64
    seconds = int(pd.Timestamp(when).value // 10**9)
    days = solar_radiation._get_j2000_days(pd.Timestamp(when))  # pylint: disable=protected-access
    print(f"    {{{seconds}, {lat!r}, {lon!r}, {float(value[0, 0, 0])!r}, {float(days)!r}}},  // {when}")


if __name__ == "__main__":
  main()
