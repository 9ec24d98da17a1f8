#!/usr/bin/python3
"""Golden scale / zero point values from PyTorch's own observers, for tests/quant/observer_test.cpp.

Run once with Debian's python3-torch (LibTorch 1.13's Python side, the version yoloqat links):
    apt-get install -y python3-torch
    /usr/bin/python3 tests/quant/golden/make_golden.py   # writes tests/quant/golden/observers.json
The test suite reads the JSON only; it never needs python3-torch.

Inputs are seeded (torch.manual_seed) and rounded to multiples of 1/1024, so they are exact in float32
and short in JSON. Each case names the yoloqat observer and scheme that must reproduce it:
  scheme fields map to PyTorch as: signed -> qint8 / unsigned -> quint8; symmetric -> *_symmetric;
  bits < 8 or narrow_range -> quant_min/quant_max given explicitly (PyTorch's "customized range").

HistogramObserver inputs: PyTorch 1.13 passes int(min) and int(max) to torch.histc (fixed in later
versions, which pass the float range). yoloqat implements the float range. The inputs below are chosen
so that both agree: every batch holds integer extremes and the running range only grows by powers of
two, so the range widening of _adjust_min_max is exact (no extra width e) and the range stays integer.
"""
import json
import math
import os

import torch
from torch.ao.quantization import observer as O


def grid(t):
    """Rounds to multiples of 1/1024 (exact in float32)."""
    return torch.round(t * 1024.0) / 1024.0


def make_inputs():
    g = {}
    torch.manual_seed(20240501)
    # Per-tensor min/max family: three batches with drifting ranges (one all-positive batch).
    g["pt"] = [grid(torch.randn(48) * 1.5 + 0.3), grid(torch.randn(48) * 0.8 - 0.6),
               grid(torch.rand(48) * 2.0 + 0.1)]
    # Per-channel family: weight-like [4, 3, 2, 2]; channel 3 is all-positive.
    pc = []
    for i in range(2):
        w = torch.randn(4, 3, 2, 2) * torch.tensor([0.5, 1.0, 2.0, 0.1]).view(4, 1, 1, 1)
        w[3] = w[3].abs() + 0.05
        pc.append(grid(w))
    g["pc"] = pc
    # Histogram, two-sided: batch 1 spans exactly [-2, 2], batch 2 [-4, 4], batch 3 inside [-4, 4].
    h = []
    for lim, sd in ((2.0, 0.5), (4.0, 0.7), (3.0, 0.9)):
        x = grid(torch.randn(64) * sd).clamp(-lim + 0.25, lim - 0.25)
        x[5], x[40] = -lim, lim
        h.append(x)
    g["hist"] = h
    # Histogram, one-sided (post-activation-like): [0, 3] then [0, 6].
    hp = []
    for lim in (3.0, 6.0):
        x = grid(torch.rand(64) ** 3 * (lim - 0.5))
        x[0], x[63] = 0.0, lim
        hp.append(x)
    g["hist_pos"] = hp
    # Histogram with many values: formula inputs (see power_inputs), stored as their parameters.
    g["hist_power"] = [power_inputs(1024, 2.0, 7, 0.0), power_inputs(1024, 4.0, 9, 0.0)]
    g["hist_power_pos"] = [power_inputs(1024, 3.0, 7, 3.0)]
    return g


def power_inputs(n, limit, power, shift):
    """x_i = limit * (2 u_i - 1)^power + shift with u_i = (i + 0.5) / n, on the 1/1024 grid, the first and
    last value replaced by floor / ceil (integer extremes). Plain IEEE double operations in a fixed order
    (the power by repeated multiplication), so the C++ test regenerates the same float32 values."""
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    t = 2.0 * u - 1.0
    p = t.clone()
    for _ in range(power - 1):
        p = p * t
    x = torch.round((limit * p + shift) * 1024.0) / 1024.0
    x[0] = math.floor(x[0].item())
    x[-1] = math.ceil(x[-1].item())
    x = x.float()
    x.formula = dict(formula="power", n=n, limit=limit, power=power, shift=shift,
                     sum=float(x.double().sum()), sum_sq=float((x.double() ** 2).sum()))
    return x


# yoloqat scheme -> PyTorch observer keyword arguments.
def torch_kwargs(s):
    dtype = torch.qint8 if s["signed"] else torch.quint8
    if s["per_channel"]:
        qscheme = torch.per_channel_symmetric if s["symmetric"] else torch.per_channel_affine
    else:
        qscheme = torch.per_tensor_symmetric if s["symmetric"] else torch.per_tensor_affine
    kw = dict(dtype=dtype, qscheme=qscheme, reduce_range=False)
    if s["bits"] != 8 or s["narrow_range"]:
        lo = -(1 << (s["bits"] - 1)) if s["signed"] else 0
        hi = ((1 << (s["bits"] - 1)) - 1) if s["signed"] else (1 << s["bits"]) - 1
        if s["narrow_range"]:
            lo += 1
        kw["quant_min"], kw["quant_max"] = lo, hi
    if s["per_channel"]:
        kw["ch_axis"] = s["axis"]
    return kw


def scheme(bits=8, symmetric=False, per_channel=False, axis=0, signed=False, narrow_range=False):
    return dict(bits=bits, symmetric=symmetric, per_channel=per_channel, axis=axis, signed=signed,
                narrow_range=narrow_range)


UINT8_AFFINE = scheme()
INT8_SYM = scheme(symmetric=True, signed=True)
UINT8_SYM = scheme(symmetric=True)
INT8_AFFINE = scheme(signed=True)
INT8_SYM_NARROW = scheme(symmetric=True, signed=True, narrow_range=True)
INT4_SYM = scheme(bits=4, symmetric=True, signed=True)
UINT4_AFFINE = scheme(bits=4)
UINT4_SYM = scheme(bits=4, symmetric=True)
UINT7_AFFINE = scheme(bits=7)  # PyTorch's quint8 reduce_range=True range [0, 127]
PC_INT8_SYM = scheme(symmetric=True, per_channel=True, signed=True)
PC_UINT8_AFFINE_AX1 = scheme(per_channel=True, axis=1)
PC_INT4_SYM_NARROW = scheme(bits=4, symmetric=True, per_channel=True, signed=True, narrow_range=True)

CLASSES = {
    "minmax": O.MinMaxObserver,
    "moving_average_minmax": O.MovingAverageMinMaxObserver,
    "per_channel_minmax": O.PerChannelMinMaxObserver,
    "moving_average_per_channel_minmax": O.MovingAveragePerChannelMinMaxObserver,
    "histogram": O.HistogramObserver,
}


def run_case(name, observer, s, inputs, inputs_key, options=None):
    options = options or {}
    kw = torch_kwargs(s)
    kw.update(options)
    obs = CLASSES[observer](**kw)
    for x in inputs[inputs_key]:
        obs(x)
    scale, zp = obs.calculate_qparams()
    return dict(name=name, observer=observer, scheme=s, options=options, inputs=inputs_key,
                min_val=obs.min_val.reshape(-1).tolist(), max_val=obs.max_val.reshape(-1).tolist(),
                scale=scale.reshape(-1).tolist(), zero_point=[int(v) for v in zp.reshape(-1).tolist()])


def main():
    inputs = make_inputs()
    cases = []
    for sname, s in (("uint8_affine", UINT8_AFFINE), ("int8_symmetric", INT8_SYM),
                     ("uint8_symmetric", UINT8_SYM), ("int8_affine", INT8_AFFINE),
                     ("int8_symmetric_narrow", INT8_SYM_NARROW), ("int4_symmetric", INT4_SYM),
                     ("uint4_affine", UINT4_AFFINE), ("uint4_symmetric", UINT4_SYM),
                     ("uint7_affine", UINT7_AFFINE)):
        cases.append(run_case("minmax/" + sname, "minmax", s, inputs, "pt"))
    for sname, s in (("uint8_affine", UINT8_AFFINE), ("int8_symmetric", INT8_SYM)):
        cases.append(run_case("moving_average_minmax/" + sname, "moving_average_minmax", s, inputs, "pt"))
    cases.append(run_case("moving_average_minmax/uint8_affine_c0.25", "moving_average_minmax",
                          UINT8_AFFINE, inputs, "pt", dict(averaging_constant=0.25)))
    for sname, s in (("int8_symmetric_axis0", PC_INT8_SYM), ("uint8_affine_axis1", PC_UINT8_AFFINE_AX1),
                     ("int4_symmetric_narrow_axis0", PC_INT4_SYM_NARROW)):
        cases.append(run_case("per_channel_minmax/" + sname, "per_channel_minmax", s, inputs, "pc"))
        cases.append(run_case("moving_average_per_channel_minmax/" + sname,
                              "moving_average_per_channel_minmax", s, inputs, "pc"))
    for sname, s in (("uint8_affine", UINT8_AFFINE), ("int8_symmetric", INT8_SYM)):
        cases.append(run_case("histogram/" + sname, "histogram", s, inputs, "hist"))
        cases.append(run_case("histogram_pos/" + sname, "histogram", s, inputs, "hist_pos"))
        cases.append(run_case("histogram_power/" + sname, "histogram", s, inputs, "hist_power"))
        cases.append(run_case("histogram_power_pos/" + sname, "histogram", s, inputs, "hist_power_pos"))
    cases.append(run_case("histogram_power/uint8_affine_bins512", "histogram", UINT8_AFFINE, inputs,
                          "hist_power", dict(bins=512, upsample_rate=16)))

    out = dict(
        generator="tests/quant/golden/make_golden.py",
        torch_version=torch.__version__,
        inputs={k: [getattr(x, "formula", None) or dict(shape=list(x.shape), data=x.reshape(-1).tolist())
                    for x in v] for k, v in inputs.items()},
        cases=cases)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "observers.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", path, "with", len(cases), "cases")


if __name__ == "__main__":
    main()
