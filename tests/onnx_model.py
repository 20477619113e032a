"""A tiny ONNX matting model for rembg's ``u2net_custom`` session, and the rembg CLI.

Nothing here downloads anything. The model takes rembg's u2net input (``input.1``,
float ``1x3x320x320``, ImageNet-normalised) and returns ``1x1x320x320``: the mean
over the colour channels, shifted and scaled, through a sigmoid, so dark subjects
on a light background come out as foreground (rembg min-max normalises the output
afterwards). ``conv_layers`` adds a stack of 3x3 convolutions whose output is
mixed in with a tiny weight, so benchmarks can make compute dominate.

Tests import this module; ``bench/cutout_bench.py`` puts ``tests/`` on ``sys.path``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

INPUT_NAME = "input.1"
SIZE = 320


def build_model(*, shift: float = 1.0, scale: float = 4.0, conv_layers: int = 0, channels: int = 16, seed: int = 0):
    """The ONNX ``ModelProto`` (opset 13, IR 8: onnxruntime 1.17+ reads it)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("ReduceMean", [INPUT_NAME], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["mean", "shift"], ["centred"]),
        helper.make_node("Mul", ["centred", "neg_scale"], ["logit"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([shift], dtype=np.float32), "shift"),
        numpy_helper.from_array(np.array([-scale], dtype=np.float32), "neg_scale"),
    ]
    last = "logit"
    if conv_layers > 0:
        rng = np.random.default_rng(seed)
        feature, cin = INPUT_NAME, 3
        for i in range(conv_layers):
            w = (rng.standard_normal((channels, cin, 3, 3)) / np.sqrt(9 * cin)).astype(np.float32)
            b = np.zeros(channels, dtype=np.float32)
            inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
            nodes += [
                helper.make_node("Conv", [feature, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1, 1, 1, 1]),
                helper.make_node("Relu", [f"c{i}"], [f"r{i}"]),
            ]
            feature, cin = f"r{i}", channels
        w = (rng.standard_normal((1, cin, 1, 1)) / np.sqrt(cin)).astype(np.float32)
        inits += [
            numpy_helper.from_array(w, "w_out"),
            numpy_helper.from_array(np.array([1e-3], dtype=np.float32), "mix"),
        ]
        nodes += [
            helper.make_node("Conv", [feature, "w_out"], ["conv_out"]),
            helper.make_node("Tanh", ["conv_out"], ["conv_tanh"]),
            helper.make_node("Mul", ["conv_tanh", "mix"], ["conv_small"]),
            helper.make_node("Add", ["logit", "conv_small"], ["logit_mixed"]),
        ]
        last = "logit_mixed"
    nodes.append(helper.make_node("Sigmoid", [last], ["mask"]))

    graph = helper.make_graph(
        nodes,
        "tiny_matte",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, SIZE, SIZE])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="fal-assets-tests")
    model.ir_version = 8
    return model


def write_model(path: str | os.PathLike, **kwargs) -> Path:
    """Build the model, check it with ``onnx.checker`` and save it to ``path``."""
    import onnx

    model = build_model(**kwargs)
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


# The ``rembg`` console script is ``from rembg.cli import main; main()``. rembg's CLI
# package imports every sub-command, and some need the ``rembg[cli]`` extras
# (filetype, fastapi, asyncer). Where those are missing this runs rembg's own ``i``
# command (the same click command, the same code path) without its siblings.
_CLI = r"""
import os, sys, types
try:
    from rembg.cli import main
except ModuleNotFoundError as exc:
    sys.stderr.write(f"rembg-cli: {exc}; running rembg's own 'i' command alone\n")
    import click, rembg
    pkg = types.ModuleType("rembg.commands")
    pkg.__path__ = [os.path.join(os.path.dirname(rembg.__file__), "commands")]
    sys.modules["rembg.commands"] = pkg
    from rembg.commands.i_command import i_command

    @click.group()
    def main():
        pass

    main.add_command(i_command)
sys.argv[0] = "rembg"
sys.exit(main())
"""


def rembg_cli_argv(args: Sequence[str]) -> list[str]:
    """argv that runs ``rembg <args>`` with this virtualenv's Python."""
    return [sys.executable, "-c", _CLI, *args]


def run_rembg_cli(args: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``rembg <args>`` as a subprocess; raise with its stderr when it fails."""
    done = subprocess.run(rembg_cli_argv(args), env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"rembg {' '.join(args)} exited {done.returncode}:\n{done.stderr[-4000:]}")
    return done
