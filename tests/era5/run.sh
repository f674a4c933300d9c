#!/bin/sh
# tests/era5/run.sh: the ERA5 converter (tools/era5/) on data made by the test.
#
#   tests/era5/run.sh              the test (`make test` runs it)
#   tests/era5/run.sh --fixture    rewrite tests/data/weather/, the committed converted
#                                  fixture of the C++ tests
#
# A tiny ERA5-like NetCDF (tests/era5/make_synthetic.py: 10 deg, 4 levels, 40 six-hourly times,
# a known pattern) is converted (3 levels, every 2nd row and column), then:
#   - check.py compares every converted value with the source read by netCDF4 and numpy (f32:
#     bitwise; bf16: within bf16's rounding) and the statistics with numpy's;
#   - the C++ reader (gc_tests' WeatherDataset tests, GC_WEATHER_DIR) reads the same frames;
#   - an interrupted conversion (chunks and dataset.json removed) resumes to the same bytes;
#   - missing variables, wrong units and a gap in the times exit 2 with a message naming them.
# Python with xarray and netCDF4 is needed here only (Debian: python3-xarray python3-netcdf4);
# without it the test says so and skips.
set -eu
cd "$(dirname "$0")/../.."

PY=
for candidate in python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import xarray, netCDF4' >/dev/null 2>&1; then
    PY=$candidate
    break
  fi
done
if [ -z "$PY" ]; then
  echo "tests/era5: SKIPPED: no python3 with xarray and netCDF4 (apt-get install python3-xarray python3-netcdf4)"
  exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gc_era5.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
convert() { "$PY" tools/era5/convert.py "$@"; }

if [ "${1:-}" = "--fixture" ]; then
  out=tests/data/weather
  "$PY" tests/era5/make_synthetic.py "$tmp/source.nc" --times 8 --start 2015-12-31T00 --precipitation
  rm -rf "$out"
  convert "$tmp/source.nc" --out "$out" --levels 500,850,1000 --coarsen 2 --chunk-times 3 \
    --variables geopotential,temperature,2m_temperature,10m_u_component_of_wind,total_precipitation_6hr,geopotential_at_surface,land_sea_mask
  "$PY" tests/era5/check.py "$tmp/source.nc" "$out" --levels 500,850,1000 --coarsen 2 --expected 0,4,7
  rm -rf "$out/partial" "$out/conversion.json" "$out/stats"  # the reader needs neither
  echo "tests/era5: wrote $out"
  exit 0
fi

fail() { echo "tests/era5: FAIL: $*"; exit 1; }
# expect_error WORDS -- convert arguments: exit status 2 and a message holding WORDS.
expect_error() {
  words=$1; shift 2
  if convert "$@" >"$tmp/log" 2>&1; then fail "convert $* succeeded"; fi
  status=0; convert "$@" >/dev/null 2>&1 || status=$?
  [ "$status" = 2 ] || fail "convert $* exited $status, not 2"
  grep -q -- "$words" "$tmp/log" || { cat "$tmp/log"; fail "the message of convert $* does not say '$words'"; }
  echo "tests/era5: refused as expected: $(tail -n 1 "$tmp/log")"
}

"$PY" tests/era5/make_synthetic.py "$tmp/source.nc"
args="--levels 500,850,1000 --coarsen 2 --chunk-times 16"
convert "$tmp/source.nc" --out "$tmp/f32" $args
"$PY" tests/era5/check.py "$tmp/source.nc" "$tmp/f32" --levels 500,850,1000 --coarsen 2 --expected 0,17,39
convert "$tmp/source.nc" --out "$tmp/bf16" $args --dtype bf16
"$PY" tests/era5/check.py "$tmp/source.nc" "$tmp/bf16" --levels 500,850,1000 --coarsen 2 --expected 0,17,39

if [ -x ./gc_tests ]; then
  for d in f32 bf16; do
    GC_WEATHER_DIR="$tmp/$d" ./gc_tests --gtest_brief=1 --gtest_filter='WeatherDataset*' || fail "the C++ reader on $d"
  done
else
  echo "tests/era5: ./gc_tests not built: the C++ reader was not run on the fresh conversion"
fi

# The converted data trains: a few steps of GraphCast's task, then its scores by lead time.
if [ -x ./gc_train ]; then
  ./gc_train --data "$tmp/f32" --train-years 2015 --valid-years 2016 --mesh 1 --latent 8 --layers 2 --steps 3 \
    --out "$tmp/run" --report "$tmp/run/report.json" --quiet >"$tmp/train.log" 2>&1 || { cat "$tmp/train.log"; fail "gc_train --data"; }
  "$PY" - "$tmp/run/report.json" "$tmp/run/metrics.jsonl" <<'PYEOF' || fail "gc_train --data: report"
import json, math, sys
r = json.load(open(sys.argv[1]))
e = r["eval"]
assert e["variables"] == ["z500", "t850", "t2m", "u10"], e["variables"]
assert e["lead_hours"][0] == 6 and all(math.isfinite(x) for row in e["rmse"]["model"] for x in row)
assert r["memory"]["host_data_pipeline_bytes"] > 0
lines = [json.loads(l) for l in open(sys.argv[2])]
assert [l["step"] for l in lines if "loss" in l] == [1, 2, 3] and "eval" in lines[-1]
print("tests/era5: gc_train --data trained 3 steps; z500 RMSE at 6 h: model %.1f, persistence %.1f, climatology %.1f m2/s2"
      % (e["rmse"]["model"][0][0], e["rmse"]["persistence"][0][0], e["rmse"]["climatology"][0][0]))
PYEOF
fi

# Resume: a conversion that lost its last chunks and its description ends with the same bytes.
cp -r "$tmp/f32" "$tmp/resumed"
rm "$tmp/resumed/dataset.json" "$tmp/resumed/chunk-00002.bin" "$tmp/resumed/partial/chunk-00001.npz"
convert "$tmp/source.nc" --out "$tmp/resumed" $args 2>"$tmp/log"
grep -q "resuming" "$tmp/log" || fail "the second run did not resume"
grep -q "1 of 3 chunks were already converted" "$tmp/log" || { cat "$tmp/log"; fail "the resumed run redid converted chunks"; }
for f in dataset.json chunk-00000.bin chunk-00001.bin chunk-00002.bin stats.npz static.npz; do
  cmp -s "$tmp/f32/$f" "$tmp/resumed/$f" || fail "$f differs after resuming"
done
echo "tests/era5: an interrupted conversion resumed to the same bytes"
expect_error "other settings" -- "$tmp/source.nc" --out "$tmp/resumed" --levels 500,850 --coarsen 2

# DeepMind's statistics files (--stats-from: *_by_level.nc, 37 levels) replace the computed ones
# wherever they hold a variable, taken at the converted levels.
mkdir -p "$tmp/dmstats"
"$PY" - "$tmp/dmstats" <<'PYEOF'
import sys
import numpy as np
import xarray as xr
levels = np.array([1, 2, 3, 5, 7, 10, 20, 30, 50, 70, 100, 125, 150, 175, 200, 225, 250, 300, 350, 400, 450, 500, 550,
                   600, 650, 700, 750, 775, 800, 825, 850, 875, 900, 925, 950, 975, 1000], dtype=np.int32)
for k, key in enumerate(("mean", "stddev", "diffs_stddev")):
    xr.Dataset({"temperature": (("level",), 100.0 * (k + 1) + levels.astype(np.float64)),
                "2m_temperature": ((), 7.0 + k)}, coords={"level": levels}).to_netcdf("%s/%s_by_level.nc" % (sys.argv[1], key))
PYEOF
convert "$tmp/source.nc" --out "$tmp/dm" $args --stats-from "$tmp/dmstats" 2>/dev/null
"$PY" - "$tmp/dm/stats.npz" "$tmp/f32/stats.npz" <<'PYEOF' || fail "--stats-from"
import sys
import numpy as np
dm, own = np.load(sys.argv[1]), np.load(sys.argv[2])
assert list(dm["mean/temperature"]) == [600.0, 950.0, 1100.0] and list(dm["diffs_stddev/temperature"]) == [800.0, 1150.0, 1300.0]
assert float(dm["stddev/2m_temperature"]) == 8.0
assert np.array_equal(dm["mean/geopotential"], own["mean/geopotential"])  # not in DeepMind's files: computed
PYEOF
echo "tests/era5: --stats-from takes DeepMind's *_by_level.nc at the converted levels, the rest computed"

# Bad input: clear messages, exit 2.
expect_error "lack specific_humidity" -- "$tmp/source.nc" --out "$tmp/x" --variables geopotential,specific_humidity
expect_error "pressure levels \[700\]" -- "$tmp/source.nc" --out "$tmp/x" --levels 500,700
expect_error "no such file" -- "$tmp/missing.nc" --out "$tmp/x"
"$PY" - "$tmp/source.nc" "$tmp/units.nc" "$tmp/gap.nc" "$tmp/cds.nc" <<'PYEOF'
import sys
import xarray as xr
ds = xr.open_dataset(sys.argv[1]).load()
bad = ds.copy()
bad["2m_temperature"].attrs["units"] = "degC"
bad.to_netcdf(sys.argv[2])
ds.isel(time=[t for t in range(ds.sizes["time"]) if t != 5]).to_netcdf(sys.argv[3])
# The same data as the Copernicus store writes ERA5: short names, valid_time and
# pressure_level, latitudes north to south, units spelled "m s-1".
cds = ds.drop_vars("geopotential_at_surface").rename({
    "geopotential": "z", "temperature": "t", "u_component_of_wind": "u", "2m_temperature": "t2m",
    "10m_u_component_of_wind": "u10", "mean_sea_level_pressure": "msl", "land_sea_mask": "lsm",
    "time": "valid_time", "level": "pressure_level"}).isel(latitude=slice(None, None, -1))
cds["u"].attrs["units"] = "m s-1"
cds.to_netcdf(sys.argv[4])
PYEOF
# ERA5's own names and layout convert to the same bytes as WeatherBench2's.
wb2vars=geopotential,temperature,u_component_of_wind,2m_temperature,10m_u_component_of_wind,mean_sea_level_pressure,land_sea_mask
convert "$tmp/source.nc" --out "$tmp/wb2" --variables $wb2vars --levels 500,850,1000 --coarsen 2 2>/dev/null
convert "$tmp/cds.nc" --out "$tmp/cds" --variables $wb2vars --levels 500,850,1000 --coarsen 2 2>/dev/null
for f in chunk-00000.bin stats.npz static.npz; do
  cmp -s "$tmp/wb2/$f" "$tmp/cds/$f" || fail "ERA5's short names and dims: $f differs from WeatherBench2's"
done
echo "tests/era5: ERA5's short names (z, t, u, t2m, u10, msl, lsm), valid_time, pressure_level and north-to-south rows convert to the same bytes"

# Hourly sources are taken every 6 hours; block means coarsen grids without pole rows.
"$PY" - "$tmp/source.nc" "$tmp/hourly.nc" <<'PYEOF'
import sys
import numpy as np
import xarray as xr
ds = xr.open_dataset(sys.argv[1]).load()
hours = ds["time"].values[0] + np.arange(6 * (ds.sizes["time"] - 1) + 1) * np.timedelta64(1, "h")
ds.reindex(time=hours, method="nearest").to_netcdf(sys.argv[2])
PYEOF
convert "$tmp/hourly.nc" --out "$tmp/hourly" $args 2>/dev/null
for f in chunk-00000.bin chunk-00002.bin stats.npz; do
  cmp -s "$tmp/f32/$f" "$tmp/hourly/$f" || fail "an hourly source: $f differs from the 6-hourly conversion"
done
"$PY" tests/era5/make_synthetic.py "$tmp/nopoles.nc" --times 6 --no-poles
convert "$tmp/nopoles.nc" --out "$tmp/mean" --variables temperature,2m_temperature --levels 850 --coarsen 2 \
  --coarsen-method mean 2>/dev/null
"$PY" - "$tmp/nopoles.nc" "$tmp/mean" <<'PYEOF' || fail "--coarsen-method mean"
import json, sys
import netCDF4
import numpy as np
src, out = netCDF4.Dataset(sys.argv[1]), sys.argv[2]
d = json.load(open(out + "/dataset.json"))
lat_order = np.argsort(-src["latitude"][:]); lon_order = np.argsort(src["longitude"][:] % 360)
t = np.asarray(src["temperature"][:, list(src["level"][:]).index(850)], np.float64)[:, lat_order][:, :, lon_order]
t2 = np.asarray(src["2m_temperature"][:], np.float64)[:, lat_order][:, :, lon_order]
def cells(x):  # 2 x 2 cells centred on longitudes 0, 20, ...: rows paired, columns 1/4, 1/2, 1/4
    rows = 0.5 * (x[:, 0::2] + x[:, 1::2])
    out = np.empty(rows.shape[:2] + (18,))
    for j in range(18):
        out[:, :, j] = 0.25 * rows[:, :, (2 * j - 1) % 36] + 0.5 * rows[:, :, 2 * j] + 0.25 * rows[:, :, 2 * j + 1]
    return out
want = np.stack([cells(t), cells(t2)], axis=-1)
got = np.fromfile(out + "/chunk-00000.bin", dtype="<f4", offset=64).reshape(want.shape)
err = np.max(np.abs(got - want) / np.abs(want))
assert err < 2 ** -23, err
assert np.allclose(d["grid"]["latitudes"][:2], [80.0, 60.0]) and d["grid"]["longitudes"][1] == 20.0, d["grid"]
PYEOF
echo "tests/era5: an hourly source converts to the 6-hourly bytes; --coarsen-method mean gives the cell means"
expect_error "gc expects K" -- "$tmp/units.nc" --out "$tmp/x"
expect_error "not 6-hourly without gaps" -- "$tmp/gap.nc" --out "$tmp/x"
expect_error "--resolution 15 is not a whole multiple" -- "$tmp/source.nc" --out "$tmp/x" --resolution 15
# gc's forecast back to NetCDF: DeepMind's fixture forecast by gc_forecast, through to_netcdf.py,
# equals DeepMind's own outputs (as the C++ test measures: within 2.1e-7 of each field's largest value).
if [ -x ./gc_forecast ]; then
  D=tests/data/deepmind
  ./gc_forecast --checkpoint $D/checkpoint.npz --stats $D/stats.npz --inputs $D/inputs.npz --graphs $D/graphs.npz \
    --steps 3 --out "$tmp/forecast/forecast.safetensors" --quiet
  "$PY" tools/era5/to_netcdf.py "$tmp/forecast/forecast.safetensors" "$tmp/forecast.nc" --inputs $D/inputs.npz
  "$PY" - "$tmp/forecast.nc" $D/outputs_3step.npz <<'PYEOF' || fail "to_netcdf.py"
import sys
import numpy as np
import xarray as xr
ds, ref = xr.open_dataset(sys.argv[1]), np.load(sys.argv[2])
assert ds["temperature"].dims == ("time", "prediction_timedelta", "level", "latitude", "longitude")
assert list(ds["prediction_timedelta"].values.astype("timedelta64[h]").astype(int)) == [6, 12, 18]
for name in ref.keys():
    got = ds[name].values[0]
    err = float(np.max(np.abs(got - ref[name].reshape(got.shape))) / np.max(np.abs(ref[name])))
    assert err < 3e-7, (name, err)
print("tests/era5: to_netcdf.py: the NetCDF forecast equals DeepMind's outputs to 3e-7 of each field's largest value")
PYEOF
fi
echo "tests/era5: passed"
