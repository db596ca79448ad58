"""toppo.algo.metaworld_fast gives metaworld's own bits: each replacement against the original
on random inputs and edge cases, on real states of metaworld tasks (three in the quick tier,
all 50 in the slow one), and whole rollouts (sha256 with and without the replacements)."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import re
import types

import metaworld
import metaworld.policies
import numpy as np
import pytest
from metaworld.utils import reward_utils
from scipy.spatial.transform import Rotation

from toppo.algo import metaworld_fast as mf
from toppo.algo.envs import make_train_envs

SIGMOIDS = ("gaussian", "hyperbolic", "long_tail", "reciprocal", "cosine", "linear", "quadratic",
            "tanh_squared")
# quick tier: a task with one object, the scipy quaternion and grasps (its expert policy
# touches the object); two objects (stick-pull); `tolerance` imported by name (assembly)
QUICK_TASKS = ("pick-place-v3", "stick-pull-v3", "assembly-v3")


@contextlib.contextmanager
def originals():
    """metaworld's own code for the duration (the fast code back afterwards)."""
    mf.uninstall()
    try:
        yield
    finally:
        mf.install()


def bits(value) -> tuple:
    """A value's type and exact bytes, recursively (dicts, tuples, numpy and Python scalars)."""
    if isinstance(value, dict):
        return ("dict", tuple((k, bits(v)) for k, v in sorted(value.items())))
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, tuple(bits(v) for v in value))
    if isinstance(value, (np.ndarray, np.generic)):
        return (type(value).__name__, value.dtype.str, np.shape(value), np.asarray(value).tobytes())
    if isinstance(value, float):
        return ("float", np.float64(value).tobytes())
    return (type(value).__name__, value)


def outcome(fn, *args, **kwargs) -> tuple:
    """``bits`` of what ``fn`` returns, or the exception it raises (type and message)."""
    try:
        return ("value", bits(fn(*args, **kwargs)))
    except Exception as err:  # noqa: BLE001 - the original's error is part of its behaviour
        return ("raises", type(err).__name__, str(err))


# ------------------------------------------------------------------------- installation
def test_installed_by_the_env_module_and_pinned():
    assert mf.installed()  # toppo.algo.envs installed it on import
    mf.check_versions()
    with originals():
        assert not mf.installed()
        assert reward_utils.tolerance is mf._ORIGINAL_TOLERANCE
    assert mf.installed()


def test_another_version_is_refused_and_leaves_metaworlds_code(monkeypatch):
    monkeypatch.setitem(mf.PINNED, "scipy", "0.0")
    with pytest.raises(mf.VersionMismatch, match="scipy"):
        mf.install()
    mf.uninstall()
    try:
        with pytest.warns(RuntimeWarning, match="metaworld's own code steps the envs"):
            assert not mf.install_where_pinned()
        assert not mf.installed()
    finally:
        monkeypatch.undo()
        assert mf.install_where_pinned() and mf.installed()


def test_env_modules_use_rotation_only_as_replaced():
    """Every use of ``Rotation`` in metaworld's task modules is ``from_matrix(...)`` whose
    result's ``as_quat()`` is taken, all ``FastRotation`` provides; every module that has
    the name ``Rotation`` or ``tolerance`` gets the replacement."""
    for module in mf.env_modules():
        source = importlib.util.find_spec(module.__name__).loader.get_source(module.__name__)
        uses = re.findall(r"Rotation\.(\w+)\(", source)
        assert set(uses) <= {"from_matrix"}, module.__name__
        assert len(uses) == len(re.findall(r"\)\.as_quat\(\)", source)), module.__name__
        if uses:
            assert module.Rotation is mf.FastRotation
        if hasattr(module, "tolerance"):
            assert module.tolerance is mf.tolerance
    assert sum(hasattr(m, "Rotation") for m in mf.env_modules()) >= 20


# ------------------------------------------------------------------------- random inputs
def rotation_matrices(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Rotations of every branch of the conversion (random; axis-aligned ones, exact zeros
    and signed zeros; trace near -1), slightly non-orthogonal ones (scipy's SVD or not), and
    invalid ones (left-handed, singular, NaN)."""
    out = [Rotation.from_quat(q).as_matrix() for q in rng.normal(size=(n, 4))]
    for axes in ("x", "y", "z"):
        for angle in (0.0, 90.0, 180.0, -90.0, 179.999999, 1e-9):
            out.append(Rotation.from_euler(axes, angle, degrees=True).as_matrix())
    out += [np.eye(3), -np.eye(3) * np.array([1, 1, -1]), np.diag([1.0, -1.0, -1.0]),
            np.diag([-1.0, 1.0, -1.0]), np.diag([-1.0, -1.0, 1.0]), np.eye(3) * -0.0 + np.eye(3)]
    for scale in (1e-15, 1e-13, 4e-13, 1e-12, 1e-9, 1e-3):
        out += [m + rng.normal(size=(3, 3)) * scale for m in out[:50]]
    out += [rng.normal(size=(3, 3)) for _ in range(50)]  # either sign of det
    out += [np.zeros((3, 3)), np.full((3, 3), np.nan), -np.eye(3)]
    return out


def test_quaternion_equals_scipy_on_random_and_edge_matrices():
    rng = np.random.default_rng(0)
    matrices = rotation_matrices(rng, 3000)
    with np.errstate(invalid="ignore"):  # the NaN matrix: both sides' determinant warns
        for m in matrices:
            assert outcome(mf.quat_from_matrix, m) == outcome(
                lambda x: Rotation.from_matrix(x).as_quat(), m), m
    # the fast path is taken for valid rotations (else this test checks scipy against itself)
    fast = sum(mf._GRAMIAN_SLACK >= abs(np.dot(m[0], m[0]) - 1) for m in matrices)
    assert fast > 3000
    stacked = np.stack(matrices[:5])  # not a single matrix: scipy's own result
    assert bits(mf.FastRotation.from_matrix(stacked).as_quat()) == bits(
        Rotation.from_matrix(stacked).as_quat())


def tolerance_cases(rng: np.random.Generator, n: int):
    """(x, bounds, margin, sigmoid, value_at_margin): float64 and Python scalars (the fast
    path), float32 and arrays (the original's), in and out of bounds, margin 0, NaN, bad
    arguments."""
    kinds = (float, np.float64, np.float32)
    for _ in range(n):
        lower = float(rng.uniform(-1, 1)) if rng.random() < 0.7 else 0
        upper = lower + (float(rng.exponential()) if rng.random() < 0.8 else 0.0)
        kind = kinds[rng.integers(3)]
        x = kind(rng.uniform(lower - 3, upper + 3))
        margin = [0.0, 0, float(rng.exponential()), np.float64(rng.exponential())][rng.integers(4)]
        sigmoid = SIGMOIDS[rng.integers(len(SIGMOIDS))]
        value = [0.1, float(rng.uniform(0.01, 0.99)), 0.0][rng.integers(3)]
        yield x, (lower, upper), margin, sigmoid, value
    yield np.array([0.1, 2.0]), (0.0, 1.0), 0.5, "gaussian", 0.1
    yield np.float64(np.nan), (0.0, 1.0), 0.5, "long_tail", 0.1
    yield 0.5, (1.0, 0.0), 0.5, "gaussian", 0.1
    yield 0.5, (0.0, 1.0), -1.0, "gaussian", 0.1
    yield 3.0, (0.0, 1.0), 1.0, "nonesuch", 0.1
    yield -0.0, (0.0, 0.0), 0.0, "gaussian", 0.1
    yield 1e300, (0.0, 1.0), 1e-300, "long_tail", 0.1


def test_tolerance_equals_the_original_on_random_scalars():
    rng = np.random.default_rng(1)
    with np.errstate(all="ignore"):
        for x, bounds, margin, sigmoid, value in tolerance_cases(rng, 4000):
            assert outcome(mf.tolerance, x, bounds, margin, sigmoid, value) == outcome(
                mf._ORIGINAL_TOLERANCE, x, bounds, margin, sigmoid, value), (x, bounds, margin,
                                                                             sigmoid, value)
        assert outcome(mf.tolerance, 0.3, bounds=(0, 0.1), margin=0.5, sigmoid="long_tail") == \
            outcome(mf._ORIGINAL_TOLERANCE, 0.3, bounds=(0, 0.1), margin=0.5, sigmoid="long_tail")


class FakeContacts:
    """mujoco's contact list as both codes read it: struct per contact, arrays per field."""

    def __init__(self, geom1, geom2, efc_address):
        self.geom1, self.geom2, self.efc_address = geom1, geom2, efc_address

    def __iter__(self):
        return iter(types.SimpleNamespace(geom1=int(a), geom2=int(b), efc_address=int(c))
                    for a, b, c in zip(self.geom1, self.geom2, self.efc_address))


class FakeEnv:
    """What ``touching_object`` reads of an env: pad geom ids, contacts, constraint forces."""

    def __init__(self, rng: np.random.Generator):
        n, nefc = int(rng.integers(0, 12)), int(rng.integers(1, 30))
        ids = {"leftpad_geom": 1, "rightpad_geom": 2}
        contacts = FakeContacts(rng.integers(0, 5, n).astype(np.int32),
                                rng.integers(0, 5, n).astype(np.int32),
                                rng.integers(-1, nefc, n).astype(np.int32))
        force = rng.choice([-1.0, -0.0, 0.0, 1e-300, 1.0], nefc) * rng.uniform(0, 5, nefc)
        self.data = types.SimpleNamespace(contact=contacts, efc_force=force,
                                          geom=lambda name: types.SimpleNamespace(id=ids[name]))


def test_touching_object_equals_the_original_on_random_contacts():
    rng = np.random.default_rng(2)
    touching = 0
    for _ in range(1500):
        env = FakeEnv(rng)
        for geom in range(5):
            fast = outcome(mf.touching_object, env, geom)
            assert fast == outcome(mf._ORIGINALS["touching_object"], env, geom)
            touching += bool(mf.touching_object(env, geom))
    assert touching > 25


# ------------------------------------------------------------------------- real states
def raw_env(name: str, seed: int, max_path_length: int):
    """A task's env as metaworld's benchmark builds it, random goals from its own seeded
    stream at each reset, episodes of ``max_path_length`` steps."""
    env = metaworld.ALL_V3_ENVIRONMENTS[name]()
    env._freeze_rand_vec, env._set_task_called, env.seeded_rand_vec = False, True, True
    env._partially_observable = False
    env._set_task_inner()
    env.max_path_length = max_path_length
    env.seed(seed)
    return env


def policy_for(name: str):
    cls = metaworld.policies.ENV_POLICY_MAP.get(name)
    return cls() if cls is not None else None


def compare_state(env, action) -> bool:
    """Every replacement against the original at the env's current state; whether the
    gripper touches the main object there."""
    u = env.unwrapped
    geoms = {int(g) for g in np.concatenate([u.data.contact.geom1, u.data.contact.geom2])}
    checks = {
        "quat": lambda: u._get_quat_objects(),
        "obs parts": lambda: u._get_curr_obs_combined_no_goal(),
        "touching main": lambda: u.touching_object(u._get_id_main_object()),
        "touching contacts": lambda: [u.touching_object(g) for g in sorted(geoms)],
        "reward": lambda: u.evaluate_state(u._last_stable_obs, action),
    }
    fast = {what: outcome(check) for what, check in checks.items()}
    with originals():
        for what, check in checks.items():
            assert outcome(check) == fast[what], what
    prev, mocap = u._prev_obs.copy(), (u.data.mocap_pos.copy(), u.data.mocap_quat.copy())
    results = []
    for use_originals in (True, False):
        u._prev_obs = prev.copy()
        u.data.mocap_pos, u.data.mocap_quat = mocap
        with originals() if use_originals else contextlib.nullcontext():
            obs = u._get_obs()
            u.set_xyz_action(action[:3])
        results.append(bits((obs, u._prev_obs, u.data.mocap_pos, u.data.mocap_quat)))
    assert results[0] == results[1], "observation / action"
    u._prev_obs = prev  # the state the step left
    u.data.mocap_pos, u.data.mocap_quat = mocap
    return fast["touching main"] == outcome(lambda: np.bool_(True))


def rollout_digest(env, policy, steps: int, seed: int, check_states: bool) -> tuple[str, int]:
    """sha256 of a rollout (every obs, reward, ended flag and info) from a fresh seed,
    actions from the expert policy plus noise (so the gripper grasps) or random; with
    ``check_states``, every state compared (``compare_state``) and the number of states
    where the gripper touches the main object."""
    env.seed(seed)
    rng = np.random.default_rng(seed)
    digest, touches = hashlib.sha256(), 0
    obs, _ = env.reset()
    digest.update(obs.tobytes())
    for t in range(steps):
        noise = rng.normal(scale=0.1, size=4)
        base = policy.get_action(obs) if policy is not None and t % 100 < 80 else rng.uniform(-1, 1, 4)
        action = np.clip(base + noise, -1, 1).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        digest.update(repr(bits((obs, reward, terminated, truncated, info))).encode())
        if check_states:
            touches += compare_state(env, action)
        if terminated or truncated:
            obs, _ = env.reset()
            digest.update(obs.tobytes())
    return digest.hexdigest(), touches


def check_task(name: str, steps: int) -> int:
    env, policy = raw_env(name, 11, max_path_length=100), policy_for(name)
    fast, touches = rollout_digest(env, policy, steps, seed=11, check_states=True)
    with originals():
        assert rollout_digest(env, policy, steps, seed=11, check_states=False)[0] == fast, name
    env.close()
    return touches


@pytest.mark.parametrize("name", QUICK_TASKS)
def test_real_states_and_rollouts_are_bit_identical(name):
    touches = check_task(name, steps=120)  # an autoreset after 100 steps
    if name != "assembly-v3":
        assert touches > 0  # the grasp branches of the reward are exercised


@pytest.mark.slow
def test_every_mt50_task_is_bit_identical():
    names = sorted(metaworld.ALL_V3_ENVIRONMENTS)
    assert len(names) == 50
    touches = {name: check_task(name, steps=110) for name in names}  # an autoreset after 100
    assert sum(t > 0 for t in touches.values()) >= 10


@pytest.mark.slow
def test_mt10_training_rollouts_are_bit_identical():
    """The harness's own path (``EnvCopies``, ``step_envs``, same-step autoresets after
    50-step episodes): 300 vector steps of MT10, sha256 of the six arrays of every step,
    metaworld's code against the replacements from the same saved env state."""
    envs, _ = make_train_envs("MT10", "v2", 5, envs_per_task=1, async_envs=False,
                              max_episode_steps=50)
    state = envs.get_state()
    rng = np.random.default_rng(5)
    actions = rng.uniform(-1, 1, (300, envs.num_envs, envs.act_dim)).astype(np.float32)

    def digest() -> str:
        envs.set_state(state)
        h = hashlib.sha256(envs.reset().tobytes())
        ended = 0
        for a in actions:
            out = envs.step_raw(a)
            ended += int(out[2].sum() + out[3].sum())
            for array in out:
                h.update(np.ascontiguousarray(array).tobytes())
        assert ended >= 50  # autoresets happened
        return h.hexdigest()

    fast = digest()
    with originals():
        assert digest() == fast
    envs.close()
