"""traffic/carla without a CARLA server: the mapping from a spec's latents to the real ``carla`` 0.9.16
client classes (``WeatherParameters``, ``Transform``/``Location``/``Rotation`` and their matrices,
``TrafficManager`` method names, ``CityObjectLabel``, ``TrafficLightState``), blueprint choices against
a recorded list of CARLA's blueprint ids, the image decoders, the world's Ray resource and registration,
``crlgen check`` on the catalogue spec, and the one-line error when nothing listens (loopback only).

No CARLA server runs here, so nothing in this file shows that a server renders what the world asks for.
"""

from __future__ import annotations

import math
import socket

import numpy as np
import pytest

import carla  # the client of crlgen[carla], part of the test extra: its absence is a broken test environment

from crlgen.pipeline import load_spec
from crlgen.scenes import build_world, check_world
from crlgen.scenes.cameras import look_at, perspective_intrinsics
from crlgen.scenes.registry import world_class, world_info
from crlgen.scenes.traffic import _carla_map as cm
from crlgen.scenes.traffic import carla_world as cw
from support.cli import run_cli

#: Blueprint ids of CARLA's vehicle catalogue (carla-simulator/carla, Docs/catalogue_vehicles.md, the
#: 0.9.15/0.9.16 catalogue: generations 1 and 2), recorded here as the reference the choices must come from.
CATALOGUE_VEHICLES = frozenset({
    "vehicle.audi.a2", "vehicle.citroen.c3", "vehicle.chevrolet.impala", "vehicle.dodge.charger_police_2020",
    "vehicle.micro.microlino", "vehicle.dodge.charger_police", "vehicle.audi.tt", "vehicle.jeep.wrangler_rubicon",
    "vehicle.mercedes.coupe", "vehicle.yamaha.yzf", "vehicle.mercedes.coupe_2020", "vehicle.harley-davidson.low_rider",
    "vehicle.lincoln.mkz_2020", "vehicle.mini.cooper_s_2021", "vehicle.toyota.prius", "vehicle.ford.ambulance",
    "vehicle.dodge.charger_2020", "vehicle.ford.crown", "vehicle.carlamotors.carlacola", "vehicle.vespa.zx125",
    "vehicle.nissan.patrol_2021", "vehicle.sixwheeltruck.sixwheeltruck", "vehicle.mercedes.sprinter", "vehicle.audi.etron",
    "vehicle.seat.leon", "vehicle.volkswagen.t2_2021", "vehicle.tesla.cybertruck", "vehicle.lincoln.mkz_2017",
    "vehicle.carlamotors.firetruck", "vehicle.ford.mustang", "vehicle.volkswagen.t2", "vehicle.mitsubishi.fusorosa",
    "vehicle.tesla.model3", "vehicle.diamondback.century", "vehicle.gazelle.omafiets", "vehicle.bmw.grandtourer",
    "vehicle.bh.crossbike", "vehicle.kawasaki.ninja", "vehicle.nissan.patrol", "vehicle.nissan.micra",
    "vehicle.mini.cooper_s",
})
#: Two-wheelers, trucks, vans, buses and liveried cars (police, taxi, ambulance): no car of the spec may be one.
NOT_PLAIN_CARS = frozenset({
    "vehicle.yamaha.yzf", "vehicle.harley-davidson.low_rider", "vehicle.vespa.zx125", "vehicle.diamondback.century",
    "vehicle.gazelle.omafiets", "vehicle.bh.crossbike", "vehicle.kawasaki.ninja", "vehicle.carlamotors.carlacola",
    "vehicle.carlamotors.firetruck", "vehicle.sixwheeltruck.sixwheeltruck", "vehicle.mercedes.sprinter",
    "vehicle.mitsubishi.fusorosa", "vehicle.ford.ambulance", "vehicle.ford.crown", "vehicle.dodge.charger_police",
    "vehicle.dodge.charger_police_2020", "vehicle.volkswagen.t2", "vehicle.volkswagen.t2_2021", "vehicle.tesla.cybertruck",
})
#: CARLA's sensor blueprints the world films with (CARLA's sensor reference, 0.9.16).
CATALOGUE_SENSORS = frozenset({"sensor.camera.rgb", "sensor.camera.depth", "sensor.camera.semantic_segmentation",
                               "sensor.camera.instance_segmentation"})


def _matrix(t) -> np.ndarray:
    return np.array(t.get_matrix(), dtype=np.float64)


def _free_port() -> int:
    """A TCP port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def spec():
    return load_spec("traffic/carla_town")


# ----- weather ------------------------------------------------------------------------------------
def test_weather_latents_become_carla_weather_parameters():
    w = cm.weather(carla, fog=cm.FOG_VISIBILITY_MIN, rain=0.0, sun=1.0)
    assert isinstance(w, carla.WeatherParameters)
    assert w.fog_density == pytest.approx(100.0) and w.fog_distance == 0.0 and w.fog_falloff == pytest.approx(cm.FOG_FALLOFF)
    assert w.precipitation == 0.0 and w.wetness == 0.0 and w.cloudiness == 0.0
    assert w.sun_altitude_angle == pytest.approx(90.0)
    # fog density proportional to Koschmieder's extinction 3.912 / V: ten times the visibility, a tenth of the density
    for v in (80.0, 400.0, 1000.0):
        assert cm.weather(carla, v, 0.0, 1.0).fog_density == pytest.approx(100.0 * cm.FOG_VISIBILITY_MIN / v, rel=1e-6)
    rainy = cm.weather(carla, 1000.0, 0.6, 0.5)
    for field in ("precipitation", "precipitation_deposits", "wetness", "cloudiness"):
        assert getattr(rainy, field) == pytest.approx(60.0), field
    assert rainy.sun_altitude_angle == pytest.approx(0.0, abs=1e-9)  # daylight 0.5: the sun on the horizon
    assert cm.weather(carla, 1000.0, 0.0, 0.0).sun_altitude_angle == pytest.approx(-90.0)
    # the same latents give the same object (WeatherParameters compares field by field)
    assert cm.weather(carla, 123.0, 0.3, 0.7) == cm.weather(carla, 123.0, 0.3, 0.7)
    assert cm.weather(carla, 123.0, 0.3, 0.7) != cm.weather(carla, 124.0, 0.3, 0.7)


@pytest.mark.parametrize("fog, rain, sun", [(0.0, 0.1, 0.5), (100.0, 1.5, 0.5), (100.0, 0.1, -0.1)])
def test_weather_refuses_values_outside_its_domain(fog, rain, sun):
    with pytest.raises(ValueError, match="weather"):
        cm.weather(carla, fog, rain, sun)


# ----- frames: CARLA's left-handed Transform vs the map frame ------------------------------------------
def test_rotation_inverts_carla_transform_matrices():
    rng = np.random.default_rng(0)
    for _ in range(50):
        pitch, yaw, roll = rng.uniform(-85, 85), rng.uniform(-179, 179), rng.uniform(-179, 179)
        t = carla.Transform(carla.Location(x=1.0, y=-2.0, z=3.0), carla.Rotation(pitch=pitch, yaw=yaw, roll=roll))
        got = cm.ue_rotation(_matrix(t))
        assert got == pytest.approx((pitch, yaw, roll), abs=1e-3)
        back = cm.ue_transform(carla, _matrix(t))
        assert isinstance(back, carla.Transform)
        np.testing.assert_allclose(_matrix(back), _matrix(t), atol=1e-5)


def test_mounted_camera_lands_where_the_rig_puts_it():
    """A camera attached with ``sensor_transform`` to a car at any CARLA pose has, through CARLA's own matrices,
    the camera_to_world that crlgen's rig computes from the car's map pose and the camera's local pose."""
    local = look_at((0.6, 0.3, 1.5), (12.0, -1.0, 1.0))
    attach = cm.sensor_transform(carla, local)
    rng = np.random.default_rng(1)
    for _ in range(20):
        car = carla.Transform(carla.Location(x=rng.uniform(-200, 200), y=rng.uniform(-200, 200), z=rng.uniform(0, 2)),
                              carla.Rotation(pitch=rng.uniform(-10, 10), yaw=rng.uniform(-180, 180), roll=rng.uniform(-5, 5)))
        ue_camera = _matrix(car) @ _matrix(attach)  # CARLA composes a child's relative transform this way
        np.testing.assert_allclose(cm.camera_to_world(ue_camera), cm.to_map(_matrix(car)) @ local, atol=1e-4)


def test_dashcam_and_left_camera_in_carla_terms():
    forward = cm.sensor_transform(carla, look_at((0.6, 0.0, 1.5), (12.0, 0.0, 1.5)))
    assert (forward.location.x, forward.location.y, forward.location.z) == pytest.approx((0.6, 0.0, 1.5), abs=1e-6)
    assert (forward.rotation.pitch, forward.rotation.yaw, forward.rotation.roll) == pytest.approx((0.0, 0.0, 0.0), abs=1e-4)
    # the car's left (+y in the map frame) is CARLA's -y: a camera looking left has yaw -90 degrees
    left = cm.sensor_transform(carla, look_at((0.0, 0.5, 1.5), (0.0, 10.0, 1.5)))
    assert left.location.y == pytest.approx(-0.5) and left.rotation.yaw == pytest.approx(-90.0, abs=1e-4)
    down = cm.sensor_transform(carla, look_at((0.0, 0.0, 10.0), (5.0, 0.0, 0.0)))
    assert down.rotation.pitch == pytest.approx(-math.degrees(math.atan2(10.0, 5.0)), abs=1e-4)


def test_vehicle_kinematics_in_the_map_frame():
    # a car at CARLA (10, 20) with yaw 90 degrees points along CARLA's +y, the map's -y: heading -pi/2
    t = carla.Transform(carla.Location(x=10.0, y=20.0, z=0.3), carla.Rotation(yaw=90.0))
    x, y, heading, speed, accel = cm.kinematics(_matrix(t), (0.0, 5.0, 0.0), (0.0, -2.0, 0.0))
    assert (x, y) == pytest.approx((10.0, -20.0)) and heading == pytest.approx(-math.pi / 2)
    assert speed == pytest.approx(5.0) and accel == pytest.approx(-2.0)  # braking
    reversing = cm.kinematics(_matrix(t), (0.0, -1.0, 0.0), (0.0, 0.0, 0.0))
    assert reversing[3] == pytest.approx(-1.0)


def test_camera_fov_and_intrinsics_agree_with_carla_projection():
    """CARLA's ``fov`` is horizontal (K = [[W / (2 tan(fov / 2)), 0, W / 2], ...] in edge coordinates); crlgen's is
    vertical with pixel centres at integers: the same pinhole."""
    W, H, vfov = 160, 120, 60.0
    attrs = cm.camera_attributes(W, H, vfov, "rgb")
    hfov = float(attrs["fov"])
    assert hfov == pytest.approx(2 * math.degrees(math.atan(W / H * math.tan(math.radians(vfov / 2)))))
    K = perspective_intrinsics(W, H, vfov)
    assert W / (2 * math.tan(math.radians(hfov) / 2)) == pytest.approx(K[0, 0])
    assert (W / 2 - 0.5, H / 2 - 0.5) == pytest.approx((K[0, 2], K[1, 2]))
    assert attrs["image_size_x"] == "160" and attrs["image_size_y"] == "120" and attrs["sensor_tick"] == "0.0"
    assert attrs["motion_blur_intensity"] == "0.0" and "motion_blur_intensity" not in cm.camera_attributes(W, H, vfov, "depth")


# ----- traffic manager, blueprints, choices ------------------------------------------------------------
def test_traffic_manager_settings_are_real_per_vehicle_calls():
    s = cm.tm_settings(desired_speed=10.0, time_headway=1.5, aggressiveness=0.4, ignore_lights=0.25)
    for method in s:
        assert callable(getattr(carla.TrafficManager, method, None)), method
    assert s["set_desired_speed"] == pytest.approx(36.0)  # km/h
    assert s["distance_to_leading_vehicle"] == pytest.approx(15.0)  # m: headway x desired speed
    assert s["random_left_lanechange_percentage"] == s["random_right_lanechange_percentage"] == pytest.approx(40.0)
    assert s["ignore_lights_percentage"] == pytest.approx(25.0) and s["ignore_walkers_percentage"] == 0.0
    with pytest.raises(ValueError, match="traffic manager"):
        cm.tm_settings(10.0, 0.0)


def test_blueprint_choices_come_from_carlas_catalogue():
    assert set(cm.CARS) <= CATALOGUE_VEHICLES and not set(cm.CARS) & NOT_PLAIN_CARS
    assert len(set(cm.CARS)) == len(cm.CARS)
    assert [cm.car_blueprint(float(m)) for m in range(len(cm.CARS))] == list(cm.CARS)
    assert set(cm.SENSORS) == CATALOGUE_SENSORS
    assert [cm.walker_blueprint(j) for j in (0, 13, 14)] == ["walker.pedestrian.0001", "walker.pedestrian.0014",
                                                              "walker.pedestrian.0001"]
    colour = cm.car_colour(0.0)
    r, g, b = (int(c) for c in colour.split(","))
    assert r > g and r > b and all(0 <= c <= 255 for c in (r, g, b))
    assert cm.car_colour(0.0) != cm.car_colour(0.5) and cm.car_colour(1.0) == cm.car_colour(0.0)
    for bad in (1.5, -1.0, float(len(cm.CARS))):  # the index is what the store holds: never binned or clamped
        with pytest.raises(ValueError, match="integer index"):
            cm.car_blueprint(bad)


def test_town_parameter_names_carla_maps():
    assert cm.town_name(10) == "Town10HD_Opt" and cm.town_name(3.0) == "Town03_Opt"
    for bad in (8, 2.5, 0):
        with pytest.raises(ValueError, match="Town10HD_Opt"):
            cm.town_name(bad)


def test_spawn_points_are_chosen_deterministically_near_the_ego():
    rng = np.random.default_rng(3)
    pts = rng.uniform(-100, 100, size=(60, 2))
    start = np.array([0.5, 0.0, 0.0, 0.99, 0.2])
    present = np.array([True, True, True, False, True])
    idx = cm.spawn_indices(pts, start, present, near=8)
    assert idx[0] == 30 and idx[3] == -1
    assert len(set(idx[idx >= 0].tolist())) == 4  # no two cars on one point
    nearest8 = set(np.argsort(np.linalg.norm(pts - pts[30], axis=1))[1:9].tolist())
    assert set(idx[[1, 2, 4]].tolist()) <= nearest8
    assert idx[2] != idx[1]  # the same start as vehicle 1: the next free point
    np.testing.assert_array_equal(idx, cm.spawn_indices(pts, start, present, near=8))
    with pytest.raises(ValueError, match="ego"):
        cm.spawn_indices(pts, start, ~present)


def test_fixed_time_light_cycle():
    t = np.arange(0.0, 40.0, 0.5)
    s = cm.light_phase(t, offset=0.0, green=10.0, red=13.0)
    assert (s[t < 10] == cm.GREEN).all() and (s[(t >= 10) & (t < 13)] == cm.AMBER).all()
    assert (s[(t >= 13) & (t < 26)] == cm.RED).all() and (s[(t >= 26) & (t < 36)] == cm.GREEN).all()
    shifted = cm.light_phase(t, offset=5.0, green=10.0, red=13.0)  # the cycle starts at t = 5 s
    np.testing.assert_array_equal(shifted[10:], s[:-10])
    # CARLA's TrafficLightState uses the same codes as the states stored
    assert [int(carla.TrafficLightState.values[k]) for k in (cm.RED, cm.AMBER, cm.GREEN)] == [0, 1, 2]
    assert str(carla.TrafficLightState.values[cm.AMBER]) == "Yellow"


def test_crosswalks_split_and_crossed_along_their_length():
    flat = [(0, 0, 0), (4, 0, 0), (4, 10, 0), (0, 10, 0), (0, 0, 0),  # 4 m wide, 10 m long
            (20, 0, 1), (21, 0, 1), (21, 3, 1), (20, 0, 1)]
    polys = cm.crosswalk_polygons(flat)
    assert [p.shape for p in polys] == [(4, 3), (3, 3)]
    a, b = cm.crossing_ends(polys[0])
    assert abs(a[1] - b[1]) == pytest.approx(10.0) and a[0] == pytest.approx(2.0) and b[0] == pytest.approx(2.0)
    locations = [carla.Location(x=float(x), y=float(y), z=float(z)) for x, y, z in flat]  # what get_crosswalks returns
    assert len(cm.crosswalk_polygons([(p.x, p.y, p.z) for p in locations])) == 2


# ----- images ----------------------------------------------------------------------------------------
def test_image_decoders_follow_carlas_encodings():
    H, W = 2, 3
    raw = np.zeros((H, W, 4), np.uint8)
    raw[..., 3] = 255
    raw[0, 0, :3] = (10, 20, 30)  # B, G, R
    assert tuple(cm.rgb(cm.bgra(raw.tobytes(), H, W))[0, 0]) == (30, 20, 10)
    # depth: (R + 256 G + 256^2 B) / (256^3 - 1) * 1000 m; the far end (all 255) is the sky: 0
    d = np.zeros((H, W, 4), np.uint8)
    d[0, 0, :3] = (0, 1, 0)  # G = 1 -> 256 / (2^24 - 1) km
    d[0, 1, :3] = 255
    depth = cm.depth(d)
    assert depth.dtype == np.float32 and depth[0, 0] == pytest.approx(1000 * 256 / (256 ** 3 - 1), rel=1e-6)
    assert depth[0, 1] == 0.0 and depth[1, 0] == 0.0
    # instance camera: R the semantic tag, G + 256 B the (low 16 bits of the) actor id
    inst = np.zeros((H, W, 4), np.uint8)
    inst[1, 2, :3] = (0x01, 0x2C, int(carla.CityObjectLabel.Car))  # id 0x012C = 300
    assert cm.instance_ids(inst)[1, 2] == 300 and cm.semantic_tags(inst)[1, 2] == int(carla.CityObjectLabel.Car)
    with pytest.raises(ValueError, match="bytes"):
        cm.bgra(b"\x00" * 7, H, W)


def test_segmentation_classes_cover_carlas_semantic_tags():
    names = {k: int(v) for k, v in carla.CityObjectLabel.names.items()}
    lut = cm.semantic_lut(names)  # raises for a tag without a class
    assert lut[names["Roads"]] == 1 and lut[names["Sidewalks"]] == 2 and lut[names["Car"]] == 7 and lut[names["Sky"]] == 0
    # the world's own copy of the tags (for the store's key, without importing carla) is CARLA's
    assert cw._LABELS == {k: v for k, v in names.items() if k != "Any"}
    tags = np.full((2, 2), names["Car"], np.uint8)
    tags[0, 0] = names["Roads"]
    inst = np.array([[300, 300], [5, 70000 & 0xFFFF]])
    seg = cm.segmentation(tags, inst, lut, {300: 10, 70000: 11})
    assert seg.tolist() == [[1, 10], [7, 11]]  # a road pixel never takes an actor's id; ids match on 16 bits


# ----- the world: registration, resources, spec checks -----------------------------------------------
def test_world_is_registered_and_takes_one_carla_server_slot(spec):
    assert world_class("traffic/carla") is cw.CarlaWorld
    info = world_info("traffic/carla")
    assert info.requires == ("carla",) and not info.exact and info.kind == "video"
    assert cw.CarlaWorld.resources(spec).ray_options() == {"num_cpus": 1.0, "num_gpus": 0.0, "resources": {"carla": 1.0}}


def test_catalogue_spec_checks_and_declares_tolerant_outputs(spec, capsys):
    code, out, err = run_cli(capsys, "check", "traffic/carla_town")
    assert code == 0, err
    assert "carla_town" in out and "traffic/carla" in out
    assert check_world(spec) == []
    outs = {o.name: o for o in cw.CarlaWorld.outputs(spec)}
    T, V = spec.video.n_frames, len(spec.render.cameras())
    assert outs["frames"].shape == (T, V, 120, 160, 3) and outs["depth"].units == "m"
    assert outs["semantic"].shape == outs["segmentation"].shape
    assert outs["inputs"].coords["input"][1] == ("light[0].phase", "light[1].phase", "light[2].phase", "light[3].phase")
    states = outs["states"].coords["state"][1]
    assert states[:6] == ("vehicle[0].x", "vehicle[0].y", "vehicle[0].heading", "vehicle[0].speed", "vehicle[0].accel",
                          "vehicle[0].lane")
    for name in ("frames", "depth", "segmentation", "semantic", "camera_to_world", "states"):
        assert not outs[name].compare.exact and outs[name].compare == cw.RERENDER_TOLERANCE[name], name
    assert outs["inputs"].compare.exact  # crlgen's own light schedule
    ids = outs["segmentation"].attrs["ids"]
    assert ids["10"] == "vehicle[0]" and ids[str(10 + 8)] == "pedestrian[0]"


def test_spec_problems_name_the_field(spec):
    bad = spec.replace(parameters={"town": 8})
    assert any(p.startswith("parameters.town:") for p in check_world(bad))
    fast = spec.replace(video={"fps": 10, "frames": 100, "substeps": 20})
    assert any(p.startswith("video.substeps:") for p in check_world(fast))
    port = spec.replace(parameters={"town": 10, "carla_port": 70000})
    assert any(p.startswith("parameters.carla_port:") for p in check_world(port))
    real_model = spec.replace(variables={**spec.to_dict()["variables"],
                                         "vehicle[i].model": {"unit": "1", "range": [0, 1], "noise": "uniform(0, 1)"}})
    assert any(p.startswith("variables.vehicle[i].model: world traffic/carla reads vehicle[i].model as an index")
               for p in check_world(real_model))


def test_server_address_from_environment_then_parameters(spec, monkeypatch):
    for var in (cw.ENV_HOST, cw.ENV_PORT, cw.ENV_TM_PORT):
        monkeypatch.delenv(var, raising=False)
    assert cw.server_address(spec) == cw.ServerAddress("127.0.0.1", 2000, 8000)
    assert cw.server_address(spec.replace(parameters={"town": 10, "carla_port": 2010})) == cw.ServerAddress("127.0.0.1", 2010, 8010)
    monkeypatch.setenv(cw.ENV_HOST, "carla")
    monkeypatch.setenv(cw.ENV_PORT, "3000")
    monkeypatch.setenv(cw.ENV_TM_PORT, "8123")
    assert cw.server_address(spec.replace(parameters={"town": 10, "carla_port": 2010})) == cw.ServerAddress("carla", 3000, 8123)
    monkeypatch.setenv(cw.ENV_PORT, "two thousand")
    with pytest.raises(ValueError, match=cw.ENV_PORT):
        cw.server_address(spec)


def test_no_server_is_one_line_naming_host_port_and_what_to_start(spec, monkeypatch):
    port = _free_port()
    monkeypatch.setenv(cw.ENV_HOST, "127.0.0.1")
    monkeypatch.setenv(cw.ENV_PORT, str(port))
    for attempt in (lambda: cw.CarlaWorld.preflight(spec), lambda: build_world(spec)):
        with pytest.raises(cw.CarlaUnavailable) as e:
            attempt()
        msg = str(e.value)
        assert "\n" not in msg and f"127.0.0.1:{port}" in msg
        assert "--profile carla" in msg and cw.ENV_PORT in msg


# ----- the call sequence a render makes, against a fake server -------------------------------------
class _Recorder:
    """The fake server's log: (object, method, args) in call order."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __call__(self, *entry) -> None:
        self.calls.append(entry)

    def names(self, method: str) -> list[tuple]:
        return [c for c in self.calls if c[1] == method]


class _Blueprint:
    def __init__(self, bp_id: str) -> None:
        self.id, self.attrs = bp_id, {}

    def has_attribute(self, key: str) -> bool:
        if self.id.startswith("vehicle."):
            return key in ("color", "role_name")
        if self.id.startswith("walker."):
            return key in ("is_invincible", "role_name")
        return key in ("image_size_x", "image_size_y", "fov", "sensor_tick") or (key == "motion_blur_intensity" and self.id.endswith("rgb"))

    def set_attribute(self, key: str, value: str) -> None:
        assert self.has_attribute(key), (self.id, key)
        self.attrs[key] = value


class _Actor:
    def __init__(self, server: "_FakeServer", actor_id: int, bp: _Blueprint, transform, parent=None) -> None:
        self.server, self.id, self.type_id, self.parent = server, actor_id, bp.id, parent
        self.attrs = dict(bp.attrs)
        self._tf = transform

    def get_transform(self):
        if self.parent is not None:
            return cm.ue_transform(carla, _matrix(self.parent.get_transform()) @ _matrix(self._tf))
        return self._tf

    def get_location(self):
        return self.get_transform().location

    def get_velocity(self):
        return carla.Vector3D(x=1.0, y=0.0, z=0.0)

    def get_acceleration(self):
        return carla.Vector3D()

    def __getattr__(self, method):  # every other call (set_autopilot, apply_control, listen, stop...) is logged
        def call(*args, **kwargs):
            self.server.log(self.id, method, args, kwargs)
            if method == "listen":
                self.server.listeners[self.id] = args[0]
        return call


class _Light(_Actor):
    def __init__(self, server, actor_id, x, y) -> None:
        super().__init__(server, actor_id, _Blueprint("traffic.traffic_light"), carla.Transform(carla.Location(x=x, y=y)))
        self.state = carla.TrafficLightState.Red

    def set_state(self, state) -> None:
        self.server.log(self.id, "set_state", (int(state),), {})
        self.state = state

    def get_state(self):
        return self.state


class _Image:
    def __init__(self, frame: int, sensor: _Actor) -> None:
        h, w = int(sensor.attrs["image_size_y"]), int(sensor.attrs["image_size_x"])
        self.frame, self.transform = frame, sensor.get_transform()
        self.raw_data = bytes(h * w * 4)


class _Waypoint:
    lane_type = carla.LaneType.Driving
    road_id, section_id, lane_id = 3, 0, -1


class _FakeServer:
    """The server side of a CARLA client, as far as a render calls it: it records every call and answers
    with stand-ins (``_Image`` holds zero bytes). Only the call sequence is checked, never what is stored."""

    def __init__(self) -> None:
        self.log, self.frame, self.next_id = _Recorder(), 100, 1000
        self.listeners: dict[int, object] = {}
        self.actors: dict[int, _Actor] = {}
        self.lights = [_Light(self, 10 + k, 20.0 * k, 5.0) for k in range(6)]
        self.settings = carla.WorldSettings()

    # client
    def set_timeout(self, t): self.log("client", "set_timeout", (t,))
    def load_world_if_different(self, name): self.log("client", "load_world_if_different", (name,))
    def get_world(self): return self
    def get_trafficmanager(self, port):
        self.log("client", "get_trafficmanager", (port,))
        server = self

        class _TM:
            def __getattr__(self, method):
                return lambda *a: server.log("tm", method, tuple(getattr(x, "id", x) for x in a))
        return _TM()

    def apply_batch_sync(self, cmds, do_tick):
        self.log("client", "apply_batch_sync", (tuple(c.actor_id for c in cmds), do_tick))
        for c in cmds:
            self.actors.pop(c.actor_id, None)
            self.listeners.pop(c.actor_id, None)
        if do_tick:
            self.tick()

    # world
    def get_settings(self):
        s = carla.WorldSettings()
        for f in ("synchronous_mode", "fixed_delta_seconds", "substepping", "max_substeps", "max_substep_delta_time"):
            setattr(s, f, getattr(self.settings, f))
        return s

    def apply_settings(self, s):
        self.log("world", "apply_settings", (s.synchronous_mode, s.fixed_delta_seconds, s.max_substeps, s.max_substep_delta_time))
        self.settings = s

    def set_weather(self, w): self.log("world", "set_weather", (w,))
    def reset_all_traffic_lights(self): self.log("world", "reset_all_traffic_lights", ())
    def freeze_all_traffic_lights(self, on): self.log("world", "freeze_all_traffic_lights", (on,))
    def get_blueprint_library(self):
        class _Library:
            def find(self, bp_id): return _Blueprint(bp_id)
        return _Library()

    def get_map(self): return self
    def get_spawn_points(self):
        return [carla.Transform(carla.Location(x=10.0 * k, y=3.0 * (k % 4), z=0.5), carla.Rotation(yaw=15.0 * k)) for k in range(40)]
    def get_crosswalks(self):
        out = []
        for k in range(10):
            x0 = 15.0 * k
            quad = [(x0, 0, 0), (x0 + 3, 0, 0), (x0 + 3, 8, 0), (x0, 8, 0), (x0, 0, 0)]
            out += [carla.Location(x=float(a), y=float(b), z=float(c)) for a, b, c in quad]
        return out
    def generate_waypoints(self, d): return [_Waypoint()]
    def get_waypoint(self, location, project_to_road=True, lane_type=None): return _Waypoint()
    def get_actors(self):
        lights = self.lights

        class _List:
            def filter(self, pattern):
                assert pattern == "traffic.traffic_light"
                return list(lights)
        return _List()

    def _spawn(self, bp, tf, attach_to=None):
        self.next_id += 1
        actor = _Actor(self, self.next_id, bp, tf, attach_to)
        self.actors[actor.id] = actor
        self.log("world", "spawn", (bp.id, getattr(attach_to, "id", None)))
        return actor

    def try_spawn_actor(self, bp, tf): return self._spawn(bp, tf)
    def spawn_actor(self, bp, tf, attach_to=None): return self._spawn(bp, tf, attach_to)

    def tick(self):
        self.frame += 1
        self.log("world", "tick", (self.frame,))
        for sensor_id, callback in list(self.listeners.items()):
            sensor = self.actors[sensor_id]
            if self.frame % 3 == 0:
                callback(_Image(self.frame - 1, sensor))  # a late image of the previous tick: the reader drops it
            callback(_Image(self.frame, sensor))
        return self.frame


def test_render_call_sequence_against_a_fake_server(spec, monkeypatch):
    """The order of client calls one render makes, against a fake server that records them (``_FakeServer``;
    its images are zero bytes and nothing it answers is checked as data): synchronous mode with the spec's
    fixed step before anything spawns, the Traffic Manager synchronous and seeded per sample before that sample's
    cars, autopilot and the per-car settings, lights frozen and commanded every frame (a temporal edit forcing
    light 0 red from its frame on), the Traffic Manager told an edited desired speed at the edit's frame, one tick per frame with every camera read at that tick, everything a sample
    spawned destroyed after it (sensors first), and the server's settings restored on close."""
    server = _FakeServer()
    monkeypatch.setattr(cw, "connect", lambda carla_, address, timeout=cw.RPC_TIMEOUT: server)
    small = spec.replace(samples=3, video={"fps": 10, "frames": 8, "substeps": 10},
                         temporal_edits=[{"at_frame": 5, "do": "light[0].state = 0", "fraction": 1.0},
                                         {"at_frame": 3, "do": "vehicle[0].desired_speed = 3", "fraction": 1.0}],
                         interventions={"regime": "observational"})
    from crlgen.scenes.testing import _batch

    batch = _batch(small, 0, 2)
    with build_world(small) as world:
        out = world.render(batch).outputs
        calls = server.log.calls
        first_spawn = next(k for k, c in enumerate(calls) if c[1] == "spawn")
        (settings,) = [c for c in calls[:first_spawn] if c[1] == "apply_settings"]
        assert settings[2] == (True, pytest.approx(0.1), 10, pytest.approx(0.01))
        assert calls.index(("tm", "set_synchronous_mode", (True,))) < first_spawn
        seeds = [c for c in calls if c[1] == "set_random_device_seed"]
        assert [s[2][0] for s in seeds] == [int(s) % 2 ** 31 for s in batch.seeds]
        ticks = [k for k, c in enumerate(calls) if c[1] == "tick"]
        T = small.video.n_frames
        # per sample: T frame ticks, then the clean-up tick of apply_batch_sync
        assert len(ticks) == 2 * (T + 1)
        present = [[batch.latents[f"vehicle[{k}].present"][i] >= 0.5 for k in range(8)] for i in range(2)]
        autopilots = [c for c in calls if c[1] == "set_autopilot"]
        assert len(autopilots) == sum(map(sum, present)) and all(c[2] == (True, 8000) for c in autopilots)
        speed_calls = [c for c in calls if c[0] == "tm" and c[1] == "set_desired_speed"]
        assert len(speed_calls) == len(autopilots) + 2  # each car once, then the ego's edit at frame 3 in both samples
        edited = [c for c in speed_calls if c[2][1] == pytest.approx(3.6 * 3.0)]
        # applied between the ticks of frames 2 and 3 of each sample (a sample is T frame ticks and a clean-up tick)
        assert len(edited) == 2 and all(ticks[2 + (T + 1) * s] < calls.index(c) < ticks[3 + (T + 1) * s]
                                        for s, c in enumerate(edited))
        # lights: ours are commanded every frame; light[0] red from the edit's frame (5) on
        commands = [c for c in calls if c[1] == "set_state"]
        assert len(commands) == 2 * (len(server.lights) + 4 * T)  # all green at the start, then 4 lights per frame
        per_frame = [commands[len(server.lights) + 4 * t:len(server.lights) + 4 * t + 4] for t in range(T)]
        assert all(f[0][2] == (cm.RED,) for f in per_frame[5:]) and len({f[0][0] for f in per_frame}) == 1
        destroyed = server.log.names("apply_batch_sync")
        assert len(destroyed) == 2 and not server.actors and not server.listeners
        sensors = [c for c in calls if c[1] == "spawn" and c[2][1] is not None]
        assert len(sensors) == 2 * len(small.render.cameras()) * 4  # rgb, depth, semantic, instance per camera
        assert out["frames"].shape == (2, T, 2, 120, 160, 3) and out["states"].shape[:2] == (2, T)
        assert out["inputs"].shape == (2, T, 4)
        assert (out["inputs"][:, 5:, 0] == cm.RED).all()  # the edit's value is what crlgen commanded
    assert server.log.calls[-1][1] == "apply_settings" and ("tm", "set_synchronous_mode", (False,)) in server.log.calls


def test_edits_at_frame_0_act_from_the_first_tick(spec, monkeypatch):
    """An edit at frame 0 is in force before the first tick, like one at frame t before tick t: the ego's first
    Traffic Manager speed is the edited one (no later call), light 0 is commanded red from frame 0 on (it waited for
    frame 1 before), and the stored light state and inputs show it in frame 0."""
    server = _FakeServer()
    monkeypatch.setattr(cw, "connect", lambda carla_, address, timeout=cw.RPC_TIMEOUT: server)
    small = spec.replace(samples=2, video={"fps": 10, "frames": 4, "substeps": 10},
                         temporal_edits=[{"at_frame": 0, "do": "light[0].state = 0", "fraction": 1.0},
                                         {"at_frame": 0, "do": "vehicle[0].desired_speed = 3", "fraction": 1.0}],
                         interventions={"regime": "observational"})
    from crlgen.scenes.testing import _batch

    batch = _batch(small, 0, 1)
    with build_world(small) as world:
        out = world.render(batch).outputs
        calls = server.log.calls
        first_tick = next(k for k, c in enumerate(calls) if c[1] == "tick")
        speed_calls = [(k, c) for k, c in enumerate(calls) if c[0] == "tm" and c[1] == "set_desired_speed"]
        edited = [k for k, c in speed_calls if c[2][1] == pytest.approx(3.6 * 3.0)]
        assert len(edited) == 1 and edited[0] < first_tick  # set once, with the car's settings, before frame 0's tick
        assert all(k < first_tick for k, _ in speed_calls)  # and never changed after
        commands = [c for c in calls if c[1] == "set_state"]
        T = small.video.n_frames
        per_frame = [commands[len(server.lights) + 4 * t:len(server.lights) + 4 * t + 4] for t in range(T)]
        assert all(f[0][2] == (cm.RED,) for f in per_frame)
        assert (out["inputs"][0, :, 0] == cm.RED).all()


@pytest.mark.parametrize("executor", ["--inline", pytest.param("--resource=carla=1", marks=pytest.mark.slow)])
def test_crlgen_run_without_a_server_says_so_in_one_line_and_writes_nothing(executor, tmp_path, monkeypatch, capsys):
    """``crlgen run`` on a port of 127.0.0.1 where nothing listens: exit 2, one ``error:`` line naming host:port and
    the compose profile to start, no store (asked before anything is written: in this process with ``--inline``, in
    a Ray task taking the world's ``carla`` resource otherwise)."""
    port = _free_port()
    monkeypatch.setenv(cw.ENV_HOST, "127.0.0.1")
    monkeypatch.setenv(cw.ENV_PORT, str(port))
    store = tmp_path / "carla.zarr"
    code, out, err = run_cli(capsys, "run", "traffic/carla_town", "--samples", "2", "--out", str(store), "--workers", "1",
                             "--quiet", executor)
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and f"127.0.0.1:{port}" in lines[0], err
    assert "--profile carla" in lines[0] and "Traceback" not in err
    assert not store.exists() and not any(tmp_path.iterdir())
