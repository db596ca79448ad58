"""toppo.algo.compiled_models: inside compile_once(), each XML is compiled once and every env
gets its own copy, array for array the model a compile gives."""

from __future__ import annotations

import mujoco
import numpy as np
from metaworld import _env_dict

from toppo.algo import compiled_models
from toppo.algo.compiled_models import compile_once

RAW = mujoco.MjModel.__dict__["from_xml_path"]


def arrays(model: mujoco.MjModel) -> dict[str, bytes]:
    """Every array a compiled model has (the option and statistic structs' too), as bytes."""
    out = {}
    for owner, prefix in ((model, ""), (model.opt, "opt."), (model.stat, "stat.")):
        for name in dir(owner):
            value = getattr(owner, name, None) if not name.startswith("_") else None
            if isinstance(value, np.ndarray):
                out[prefix + name] = value.tobytes()
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                out[prefix + name] = repr(value).encode()
    return out


def test_each_env_gets_its_own_copy_of_one_compile(monkeypatch):
    compiles = []

    def counting(filename, assets=None):
        compiles.append(filename)
        return RAW.__func__(filename)

    monkeypatch.setattr(compiled_models, "_RAW", staticmethod(counting))
    cls = _env_dict.MT10_V3["pick-place-v3"]
    outside = cls()  # its own compile, as without the block
    compiles.clear()
    with compile_once():
        a, b = cls(), cls()
        with compile_once():  # nested: the outer block's models
            c = cls()
    assert len(compiles) == 1
    assert len({id(e.model) for e in (a, b, c)}) == 3
    want = arrays(outside.model)
    assert len(want) > 200
    assert arrays(a.model) == arrays(b.model) == arrays(c.model) == want
    a.model.body_pos[1] += 1.0  # an env changes its own model only
    assert not np.array_equal(a.model.body_pos, b.model.body_pos)
    assert np.array_equal(b.model.body_pos, c.model.body_pos)


def test_a_copy_is_the_compiled_model_array_for_array():
    for name in ("reach-v3", "door-open-v3", "peg-insert-side-v3"):
        path = _env_dict.MT10_V3[name]().fullpath
        fresh = RAW.__func__(path)
        with compile_once():
            first, second = mujoco.MjModel.from_xml_path(path), mujoco.MjModel.from_xml_path(path)
        assert arrays(first) == arrays(second) == arrays(fresh), name
        assert first is not second
    assert mujoco.MjModel.__dict__["from_xml_path"] is RAW  # restored
