"""Bit-identical fast paths for metaworld 3.1.1's hottest Python code (issue 30).

A ``ref_mt10`` rollout spends most of its CPU time inside metaworld's own ``env.step``, and
about two thirds of that is Python around mujoco's physics: per step of the 10 MT10 envs on
the 2-core Xeon VM, scipy's ``Rotation.from_matrix(...).as_quat()`` ~850 us (five calls: it
checks the determinant with LAPACK, the Gramian with ``np.isclose`` and dispatches through
scipy's array-API layer before the ~20 float operations of the conversion), the rest of the
observation ~1,050 us (``np.split``/``np.hstack`` over 3- and 4-element pieces, a 0-d
``np.clip``), ``touching_object`` ~530 us (a Python loop building a struct per contact, twice),
``reward_utils.tolerance`` ~340 us (26 calls on scalars through ``np.where``/``np.logical_and``)
and ``set_xyz_action`` ~280 us (benchmarks/measurements/metaworld-fast-2026-12-07/).

``install()`` replaces exactly these, and nothing else, with code that performs **the same
float operations in the same order on the same types**, so every observation, reward and
info value keeps its bits:

- ``quat_from_matrix`` for ``Rotation.from_matrix(m).as_quat()`` (the name ``Rotation`` in the
  metaworld env modules that use it; scipy itself is untouched): scipy's Cython
  ``_from_matrix_orthogonal`` (Markley's algorithm, then ``_normalize4``) in Python floats,
  which are C doubles. scipy first orthogonalises a matrix by SVD unless its Gramian is within
  ``atol=1e-12`` of the identity, and rejects det <= 0; the fast path takes only matrices whose
  Gramian is within 5e-13 and whose determinant is > 0.5 by our own arithmetic (so scipy's
  LAPACK/matmul arithmetic, a few ulp away, makes the same decision) and hands every other
  matrix, NaN ones included, to scipy itself.
- ``touching_object``: the same contacts selected with numpy over mujoco's contact arrays
  instead of a per-contact struct loop; the forces are summed by Python's ``sum`` in the
  same contact order (same start value, same element types).
- ``tolerance``: the scalar case (``x`` a Python or numpy float64, bounds and margin int or
  float64) without 0-d arrays; the sigmoid is metaworld's own ``_sigmoids`` on the same
  numpy float64 ``d``. Anything else (arrays, float32, other types) goes to the original.
- ``SawyerXYZEnv._get_curr_obs_combined_no_goal`` and ``_get_obs``: the same values copied
  into one preallocated float64 array (the originals' ``np.hstack`` results are float64:
  the same casts); the gripper distance is ``np.linalg.norm``'s own ``sqrt(x.dot(x))`` and
  its clip numpy's clip loop on a scalar (NaN propagates; the value is >= +0).
- ``SawyerXYZEnv.set_xyz_action``: the same ufuncs (``np.clip`` is ``um.clip``) without the
  dispatch layers.

Equality is tested, not argued: tests/test_metaworld_fast.py compares every replacement with
the original bit for bit (type and bytes: signs of zeros, NaNs) on random inputs, edge cases
and real states of metaworld's tasks (all 50 in the slow tier), and sha256 of rollouts
(MT10 through the harness, autoresets included) with and without ``install()``. The code
follows the installed versions' source, so ``install`` refuses any other version of
metaworld, scipy or numpy (``PINNED``): an upgrade must re-read the originals and re-run
those tests, not diverge silently.

``toppo.algo.envs`` calls ``install_where_pinned`` on import, so every process that builds
metaworld envs through the harness steps the fast code: the trainer, env workers and
evaluation workers (spawned: they import ``toppo.algo.envs`` to build their envs), the
tests, and ``AsyncVectorEnv``'s children (forked from a process that has it). Under other
versions it leaves metaworld's own code in place (the same numbers, slower), warns, and
the tests fail.
"""

from __future__ import annotations

import functools
import importlib
import math
import pkgutil
import warnings
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import metaworld.envs
import numpy as np
from metaworld.sawyer_xyz_env import SawyerXYZEnv
from metaworld.utils import reward_utils
from numpy._core import umath
from scipy.spatial.transform import Rotation

# The versions whose source the replacements copy, operation for operation.
PINNED = {"metaworld": "3.1.1", "scipy": "1.17.1", "numpy": "2.4.6"}

# A Gramian this close to the identity by our arithmetic is within scipy's isclose(atol=1e-12)
# by its arithmetic too (the two differ by a few ulp of 1), so scipy would skip the SVD.
_GRAMIAN_SLACK = 5e-13
_SCALAR_TYPES = (float, np.float64)
_BOUND_TYPES = (int, float, np.float64)
_MOCAP_QUAT = np.array([1, 0, 1, 0])  # set_xyz_action's own constant (int64, cast on assignment)


class VersionMismatch(RuntimeError):
    """An installed package is not the version the fast paths were written against."""


@functools.cache
def installed_versions() -> dict[str, str]:
    return {name: version(name) for name in PINNED}


def check_versions() -> None:
    found = installed_versions()
    if found != PINNED:
        raise VersionMismatch(
            f"toppo.algo.metaworld_fast copies the source of {PINNED}, found {found}: re-read the "
            "originals, update the replacements and PINNED, and rerun tests/test_metaworld_fast.py")


# ------------------------------------------------------------------------- quaternions
def quat_from_matrix(matrix: Any) -> np.ndarray:
    """``Rotation.from_matrix(matrix).as_quat()`` (scipy 1.17.1, scalar-last), bit for bit."""
    m = np.asarray(matrix, dtype=float)
    if m.shape != (3, 3):
        return _scipy_quat(matrix)
    (a, b, c), (d, e, f), (g, h, i) = m.tolist()
    if not (abs(a * a + b * b + c * c - 1.0) <= _GRAMIAN_SLACK
            and abs(d * d + e * e + f * f - 1.0) <= _GRAMIAN_SLACK
            and abs(g * g + h * h + i * i - 1.0) <= _GRAMIAN_SLACK
            and abs(a * d + b * e + c * f) <= _GRAMIAN_SLACK
            and abs(a * g + b * h + c * i) <= _GRAMIAN_SLACK
            and abs(d * g + e * h + f * i) <= _GRAMIAN_SLACK
            and a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g) > 0.5):
        return _scipy_quat(matrix)  # scipy's SVD, its error, or NaN: scipy decides
    # _from_matrix_orthogonal: decision = diagonal and trace, argmax (first of equals)
    trace = a + e + i
    choice, best = 0, a
    if e > best:
        choice, best = 1, e
    if i > best:
        choice, best = 2, i
    if trace > best:
        choice = 3
    if choice == 0:
        q = [1 - trace + 2 * a, d + b, g + c, h - f]
    elif choice == 1:
        q = [b + d, 1 - trace + 2 * e, h + f, c - g]
    elif choice == 2:
        q = [c + g, f + h, 1 - trace + 2 * i, d - b]
    else:
        q = [h - f, c - g, d - b, 1 + trace]
    norm = math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
    if norm != 0:  # _normalize4 leaves a zero quaternion as it is
        q = [q[0] / norm, q[1] / norm, q[2] / norm, q[3] / norm]
    return np.array(q)


def _scipy_quat(matrix: Any) -> np.ndarray:
    return Rotation.from_matrix(matrix).as_quat()


class _Quaternion:
    __slots__ = ("quat",)

    def __init__(self, quat: np.ndarray):
        self.quat = quat

    def as_quat(self) -> np.ndarray:
        return self.quat


class FastRotation:
    """What metaworld's env modules call ``Rotation``: they use ``from_matrix(m).as_quat()``
    only (tests/test_metaworld_fast.py checks their source)."""

    @staticmethod
    def from_matrix(matrix: Any) -> _Quaternion:
        return _Quaternion(quat_from_matrix(matrix))


# ------------------------------------------------------------------------- reward pieces
def touching_object(self: SawyerXYZEnv, object_geom_id: int) -> bool:
    """``SawyerXYZEnv.touching_object``: both pads' contact forces with the object > 0."""
    left = self.data.geom("leftpad_geom").id
    right = self.data.geom("rightpad_geom").id
    contact, force = self.data.contact, self.data.efc_force
    geom1, geom2 = contact.geom1, contact.geom2
    with_object = (geom1 == object_geom_id) | (geom2 == object_geom_id)
    left_force = sum(force[k] for k in contact.efc_address[
        with_object & ((geom1 == left) | (geom2 == left))].tolist())
    right_force = sum(force[k] for k in contact.efc_address[
        with_object & ((geom1 == right) | (geom2 == right))].tolist())
    return 0 < left_force and 0 < right_force


def tolerance(x, bounds=(0.0, 0.0), margin=0.0, sigmoid="gaussian",
              value_at_margin=reward_utils._DEFAULT_VALUE_AT_MARGIN):
    """``reward_utils.tolerance`` for a float64 scalar ``x`` without 0-d arrays (other
    inputs go to the original)."""
    lower, upper = bounds
    if not (type(x) in _SCALAR_TYPES and type(lower) in _BOUND_TYPES
            and type(upper) in _BOUND_TYPES and type(margin) in _BOUND_TYPES):
        return _ORIGINAL_TOLERANCE(x, bounds, margin, sigmoid, value_at_margin)
    if lower > upper:
        raise ValueError("Lower bound must be <= upper bound.")
    if margin < 0:
        raise ValueError(f"`margin` must be non-negative. Current value: {margin}")
    in_bounds = lower <= x and x <= upper
    if margin == 0:
        return 1.0 if in_bounds else 0.0
    d = np.float64((lower - x if x < lower else x - upper) / margin)
    value = reward_utils._sigmoids(d, value_at_margin, sigmoid)  # evaluated as the original does
    return 1.0 if in_bounds else float(value)


_ORIGINAL_TOLERANCE = reward_utils.tolerance


# ------------------------------------------------------------------------- observation, action
def _get_curr_obs_combined_no_goal(self: SawyerXYZEnv) -> np.ndarray:
    """Hand position, gripper opening, then (position, quaternion) of each object, zero-padded."""
    pos_hand = self.get_endeff_pos()
    apart = self.data.body("rightclaw").xpos - self.data.body("leftclaw").xpos
    gripper = umath.sqrt(apart.dot(apart)) / 0.1  # np.linalg.norm of a 1-d float64 array
    if gripper > 1.0:  # np.clip(., 0.0, 1.0) of a value >= +0 or NaN (NaN stays)
        gripper = 1.0
    obj_pos = self._get_pos_objects()
    assert len(obj_pos) % 3 == 0
    obj_quat = self._get_quat_objects()
    assert len(obj_quat) % 4 == 0
    objects = len(obj_pos) // 3
    if objects == 0 or objects != len(obj_quat) // 4:
        return _ORIGINALS["_get_curr_obs_combined_no_goal"](self)  # the original's error
    obs = np.zeros(4 + self._obs_obj_max_len)
    obs[:3] = pos_hand
    obs[3] = gripper
    for k in range(objects):
        obs[4 + 7 * k:7 + 7 * k] = obj_pos[3 * k:3 * k + 3]
        obs[7 + 7 * k:11 + 7 * k] = obj_quat[4 * k:4 * k + 4]
    return obs


def _get_obs(self: SawyerXYZEnv) -> np.ndarray:
    """Current observation, the previous one (frame stacking) and the goal."""
    pos_goal = self._get_pos_goal()
    if self._partially_observable:
        pos_goal = np.zeros_like(pos_goal)
    curr_obs = self._get_curr_obs_combined_no_goal()
    obs = np.concatenate((curr_obs, self._prev_obs, pos_goal))  # np.hstack of 1-d arrays
    self._prev_obs = curr_obs
    return obs


def set_xyz_action(self: SawyerXYZEnv, action: np.ndarray) -> None:
    """Move the mocap body by the clipped action, within the mocap bounds."""
    action = umath.clip(action, -1, 1)
    new_mocap_pos = self.data.mocap_pos + (action * self.action_scale)[None]
    new_mocap_pos[0, :] = umath.clip(new_mocap_pos[0, :], self.mocap_low, self.mocap_high)
    self.data.mocap_pos = new_mocap_pos
    self.data.mocap_quat = _MOCAP_QUAT


# ------------------------------------------------------------------------- installing
_METHODS: dict[str, Callable] = {
    "touching_object": touching_object,
    "_get_curr_obs_combined_no_goal": _get_curr_obs_combined_no_goal,
    "_get_obs": _get_obs,
    "set_xyz_action": set_xyz_action,
}
_ORIGINALS: dict[str, Callable] = {name: getattr(SawyerXYZEnv, name) for name in _METHODS}


@functools.cache
def env_modules() -> tuple[Any, ...]:
    """metaworld's task modules (``metaworld.envs.sawyer_*``)."""
    return tuple(importlib.import_module(f"metaworld.envs.{m.name}")
                 for m in pkgutil.iter_modules(metaworld.envs.__path__))


def _names() -> list[tuple[Any, str, Any, Any]]:
    """(owner, attribute, original, replacement) of every name ``install`` sets."""
    names = [(SawyerXYZEnv, n, _ORIGINALS[n], fast) for n, fast in _METHODS.items()]
    names.append((reward_utils, "tolerance", _ORIGINAL_TOLERANCE, tolerance))
    for module in env_modules():
        if getattr(module, "Rotation", None) in (Rotation, FastRotation):
            names.append((module, "Rotation", Rotation, FastRotation))
        if getattr(module, "tolerance", None) in (_ORIGINAL_TOLERANCE, tolerance):
            names.append((module, "tolerance", _ORIGINAL_TOLERANCE, tolerance))
    return names


def install() -> None:
    """Replace metaworld's hot paths in this process (idempotent)."""
    check_versions()
    for owner, name, _, fast in _names():
        setattr(owner, name, fast)


def install_where_pinned() -> bool:
    """``install()`` where the installed versions are ``PINNED``; elsewhere leave metaworld's
    own code (the same numbers, slower) and warn. Whether the fast code is in."""
    try:
        install()
    except VersionMismatch as err:
        warnings.warn(f"{err}. Until then metaworld's own code steps the envs (the same "
                      "numbers, slower).", RuntimeWarning, stacklevel=2)
        return False
    return True


def uninstall() -> None:
    """Put metaworld's own code back (the tests' and benchmarks' reference)."""
    for owner, name, original, _ in _names():
        setattr(owner, name, original)


def installed() -> bool:
    return all(getattr(owner, name) is fast for owner, name, _, fast in _names())
