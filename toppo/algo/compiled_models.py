"""Each MuJoCo model compiled once while a cell's envs are built; later envs of it get a copy.

gymnasium's ``MujocoEnv`` compiles its XML in every env's constructor
(``mujoco.MjModel.from_xml_path``): about 0.3 s for a Meta-World task on one core here, where
copying the compiled model (``mj_copyModel``) takes 0.02 s. A cell builds each task's model
over and over: metaworld's goal generation, the benchmark's own env, every training copy and
every evaluation copy (``eval_envs_per_task``, 10 by default: an MT50 cell compiled 550 models
before its first step).

Inside ``compile_once()``, ``from_xml_path`` compiles each file once and hands every caller,
the first included, its own copy of that model, so every env still owns its model and
changes it freely. A copy is the compiled model array for array
(``tests/test_compiled_models.py``), and the envs built from copies step bit for bit as before
(the tests' runs against committed records: ``tests/test_verify.py``). Blocks nest (the
outermost one keeps the models); the kept models are freed when it ends. It patches the
process it runs in only; subprocess envs (``async_envs``) compile their own.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterator

import mujoco

_RAW = mujoco.MjModel.__dict__["from_xml_path"]  # the staticmethod as the class defines it
_kept: dict[str, mujoco.MjModel] | None = None  # the models of the open block


def _from_xml_path(filename: str, assets: dict | None = None) -> mujoco.MjModel:
    if assets is not None:  # in-memory assets: not the file's model alone
        return _RAW.__func__(filename, assets)
    key = os.path.realpath(filename)
    if key not in _kept:
        _kept[key] = _RAW.__func__(filename)
    return copy.copy(_kept[key])


@contextlib.contextmanager
def compile_once() -> Iterator[None]:
    """Inside this block, each MuJoCo XML file is compiled once (see the module)."""
    global _kept
    if _kept is not None:  # an outer block keeps the models
        yield
        return
    _kept = {}
    mujoco.MjModel.from_xml_path = staticmethod(_from_xml_path)
    try:
        yield
    finally:
        mujoco.MjModel.from_xml_path = _RAW
        _kept = None
