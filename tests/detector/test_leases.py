"""Camera leases: claim, renew, expire, steal, release on SQLite and PostgreSQL, and plan()."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from detector.config import Camera, InstanceSettings, Settings
from detector.runtime.leases import (
    Lease,
    LeaseError,
    LeaseKeeper,
    Plan,
    claim,
    db_now,
    fair_share,
    heartbeat,
    leases,
    live_instances,
    plan,
    release,
    renew,
)
from detector.store.db import open_database

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
LEASE_S = 10


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> sessionmaker[Session]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine, factory = open_database(url)
    request.addfinalizer(engine.dispose)
    return factory


def take(sessions: sessionmaker[Session], cam: str, me: str, now: datetime) -> Lease | None:
    with sessions.begin() as s:
        return claim(s, cam, me=me, lease_s=LEASE_S, now=now)


def table(sessions: sessionmaker[Session]) -> dict[str, tuple[str | None, int]]:
    with sessions() as s:
        return {cam: (lease.holder, lease.generation) for cam, lease in leases(s).items()}


# ---------------------------------------------------------------- statements


def test_claim_renew_expire_steal_release(sessions: sessionmaker[Session]) -> None:
    first = take(sessions, "c1", "a", at(0))
    assert first == Lease("c1", "a", at(LEASE_S), 1)
    assert take(sessions, "c1", "b", at(5)) is None  # held and not expired
    assert take(sessions, "c1", "a", at(5)).expires_at == at(5 + LEASE_S)  # mine: renewed, same generation
    with sessions.begin() as s:
        assert renew(s, me="a", lease_s=LEASE_S, now=at(12)) == {"c1": 1}
    assert take(sessions, "c1", "b", at(12 + LEASE_S - 0.001)) is None  # a microsecond before expiry
    stolen = take(sessions, "c1", "b", at(12 + LEASE_S))  # expired: stolen, next generation
    assert stolen is not None and stolen.holder == "b" and stolen.generation == 2
    with sessions.begin() as s:
        assert renew(s, me="a", lease_s=LEASE_S, now=at(23)) == {}  # a lost it
        assert release(s, me="b", now=at(24)) == 1
    assert table(sessions) == {"c1": (None, 2)}
    again = take(sessions, "c1", "a", at(25))  # released: anyone takes it at once
    assert again is not None and again.generation == 3
    with sessions.begin() as s:
        assert release(s, ["other"], me="a", now=at(26)) == 0
        assert release(s, ["c1"], me="b", now=at(26)) == 0  # not b's to release
    assert table(sessions) == {"c1": ("a", 3)}


def test_an_expired_lease_nobody_stole_is_renewed(sessions: sessionmaker[Session]) -> None:
    take(sessions, "c1", "a", at(0))
    with sessions.begin() as s:
        assert renew(s, me="a", lease_s=LEASE_S, now=at(100)) == {"c1": 1}
        assert leases(s)["c1"].expires_at == at(100 + LEASE_S)


def test_concurrent_claims_have_one_winner(sessions: sessionmaker[Session]) -> None:
    """Eight instances claim the same cameras at once, new and expired: one holder each."""
    take(sessions, "old", "dead", at(0))
    now = datetime.now(UTC) + timedelta(days=1)  # after "old" expired
    wins: dict[str, list[str]] = {"new": [], "old": []}
    barrier = threading.Barrier(8)

    def contend(me: str) -> None:
        barrier.wait()
        for cam in ("new", "old"):
            if take(sessions, cam, me, now) is not None:
                wins[cam].append(me)

    threads = [threading.Thread(target=contend, args=(f"i{n}",)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(wins["new"]) == 1 and len(wins["old"]) == 1, wins
    got = table(sessions)
    assert got["new"] == (wins["new"][0], 1) and got["old"] == (wins["old"][0], 2)


def test_the_database_clock_is_used(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        now = db_now(s)
        lease = claim(s, "c1", me="a", lease_s=LEASE_S)
    assert now.tzinfo is not None and abs((now - datetime.now(UTC)).total_seconds()) < 60
    assert lease is not None
    assert timedelta(seconds=LEASE_S) <= lease.expires_at - now < timedelta(seconds=LEASE_S + 1)


def test_heartbeat_and_live_instances(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        heartbeat(s, me="a", cameras=["c2", "c1"], lease_s=LEASE_S, now=at(0))
        heartbeat(s, me="b", cameras=["c3"], lease_s=LEASE_S, now=at(5))
        heartbeat(s, me="a", cameras=["c1"], lease_s=LEASE_S, now=at(8))
    with sessions() as s:
        assert live_instances(s, now=at(9)) == {"a": {"c1"}, "b": {"c3"}}
        assert live_instances(s, now=at(16)) == {"a": {"c1"}}  # b's heartbeat ran out
    with sessions.begin() as s:  # an instance gone for long is forgotten
        heartbeat(s, me="a", cameras=["c1"], lease_s=LEASE_S, now=at(4000))
    with sessions() as s:
        assert live_instances(s, now=at(-100)) == {"a": {"c1"}}


# ---------------------------------------------------------------- the keeper


def test_two_keepers_share_then_one_takes_over_when_the_other_dies(sessions: sessionmaker[Session]) -> None:
    cams = ["c1", "c2", "c3", "c4"]
    a = LeaseKeeper(sessions, "a", cams, lease_s=3, renew_s=1)
    assert a.join()  # alone
    a.tick()
    assert set(a.held()) == set(cams)  # alone: everything
    b = LeaseKeeper(sessions, "b", cams, lease_s=3, renew_s=1)
    assert not b.join()
    for _ in range(4):  # a hands over one camera per round, b takes it
        b.tick()
        a.tick()
        for cam in list(a._shedding):
            if a.handing_over(cam):
                a.release([cam])
    assert len(a.held()) == 2 and len(b.held()) == 2 and set(a.held()) | set(b.held()) == set(cams)
    # a dies: b takes its cameras once their leases expire (the database's clock)
    time.sleep(3.2)
    assert a.held() == {} and not a.may_serve("c1")  # by a's own clock its leases ran out: it serves nothing
    b.tick()
    assert set(b.held()) == set(cams)
    a.tick()  # a comes back: it lost them
    assert a.held() == {}
    b.leave()
    with sessions() as s:
        assert {lease.holder for lease in leases(s).values()} == {None}


def test_an_id_in_use_by_a_live_instance_is_refused(sessions: sessionmaker[Session]) -> None:
    first = LeaseKeeper(sessions, "same", ["c1"], lease_s=1, renew_s=0.3)
    assert first.join()
    first.tick()
    twin = LeaseKeeper(sessions, "same", ["c1"], lease_s=1, renew_s=0.3)
    first.start()  # the first one keeps renewing
    with pytest.raises(LeaseError, match="in use"):
        twin.join()
    first.stop()
    time.sleep(1.1)  # the first one died: its row expires, the same id may start again
    assert twin.join()


# ---------------------------------------------------------------- plan()


def lease(cam: str, holder: str | None, expires: float = 100, gen: int = 1) -> Lease:
    return Lease(cam, holder, at(expires), gen)


CAMS = ["c1", "c2", "c3", "c4", "c5"]


@pytest.mark.parametrize(
    ("eligible", "instances", "share"),
    [
        (CAMS, {"a": CAMS}, 5),
        (CAMS, {"a": CAMS, "b": CAMS}, 3),
        (CAMS, {"a": CAMS, "b": CAMS, "c": CAMS}, 2),
        (CAMS, {"a": CAMS, "b": ["x1"]}, 5),  # b may take none of a's: it does not count
        ([], {"a": []}, 0),
    ],
)
def test_fair_share(eligible: list[str], instances: dict[str, list[str]], share: int) -> None:
    assert fair_share(eligible, instances) == share


def test_plan_alone_claims_everything_free() -> None:
    got = plan("a", CAMS, {"c1": lease("c1", "gone", expires=-1)}, {"a": CAMS}, at(0))
    assert sorted(got.claim) == CAMS and got.shed == ()


def test_plan_claims_up_to_the_fair_share_when_others_are_alive() -> None:
    got = plan("a", CAMS, {}, {"a": CAMS, "b": CAMS}, at(0))
    assert len(got.claim) == 3
    other = plan("b", CAMS, {}, {"a": CAMS, "b": CAMS}, at(0))
    assert set(got.claim) != set(other.claim)  # each in its own order: they do not all collide


def test_a_worker_started_before_its_peers_registered_claims_only_its_share() -> None:
    # a supervisor starts N workers at once: the first to register must not take every camera
    got = plan("a", CAMS, {}, {"a": CAMS}, at(0), peers=2)
    assert len(got.claim) == 3
    # a peer that never comes: its cameras are taken once they have been free for long enough
    mine = {c: lease(c, "a") for c in got.claim}
    rest = {c: 2 for c in CAMS if c not in mine}
    assert sorted(plan("a", CAMS, mine, {"a": CAMS}, at(0), free_rounds=rest, peers=2).claim) == sorted(rest)


def test_plan_takes_over_expired_and_released_leases() -> None:
    current = {"c1": lease("c1", "a"), "c2": lease("c2", "dead", expires=-5), "c3": lease("c3", None)}
    got = plan("a", ["c1", "c2", "c3"], current, {"a": ["c1", "c2", "c3"]}, at(0))
    assert sorted(got.claim) == ["c2", "c3"]


def test_plan_takes_a_long_free_camera_above_its_share() -> None:
    current = {"c1": lease("c1", "a"), "c2": lease("c2", "b")}
    live = {"a": ["c1", "c2", "c3", "c4"], "b": ["c1", "c2", "c3", "c4"]}
    full = {"c3": lease("c3", "a"), **current}
    assert plan("a", live["a"], full, live, at(0)) == Plan()  # at my share (2): c4 is for b
    assert plan("a", live["a"], full, live, at(0), free_rounds={"c4": 1}) == Plan()
    assert plan("a", live["a"], full, live, at(0), free_rounds={"c4": 2}).claim == ("c4",)  # b did not take it


def test_plan_hands_over_one_camera_to_an_instance_below_its_share() -> None:
    current = {c: lease(c, "a") for c in CAMS}
    live = {"a": CAMS, "b": CAMS}
    got = plan("a", CAMS, current, live, at(0))
    assert got.claim == () and len(got.shed) == 1
    # b may only take c5 (its street): that is the one handed over
    got = plan("a", CAMS, current, {"a": CAMS, "b": ["c5"]}, at(0))
    assert got.shed == ("c5",)
    # nobody else may take them: nothing handed over
    assert plan("a", CAMS, current, {"a": CAMS, "b": ["x"]}, at(0)) == Plan()
    # above my share (3 of 4, share 2) while b holds 1: one handed over; at my share: none
    four = CAMS[:4]
    current = {"c1": lease("c1", "a"), "c2": lease("c2", "a"), "c3": lease("c3", "a"), "c4": lease("c4", "b")}
    assert len(plan("a", four, current, {"a": four, "b": four}, at(0)).shed) == 1
    current["c3"] = lease("c3", "b")
    assert plan("a", four, current, {"a": four, "b": four}, at(0)) == Plan()


def test_plan_hands_over_cameras_it_may_no_longer_take() -> None:
    got = plan("a", ["c1"], {"c1": lease("c1", "a"), "c9": lease("c9", "a")}, {"a": ["c1"]}, at(0))
    assert got == Plan((), ("c9",))


# ---------------------------------------------------------------- settings


def test_instance_settings_defaults_and_filters() -> None:
    s = Settings()
    assert not s.instance.leases_on(s.database_url)  # SQLite: one process, no leases
    assert s.instance.leases_on("postgresql+psycopg://gs@db/gs")
    assert InstanceSettings(leases=True).leases_on(s.database_url)
    assert not InstanceSettings(leases=False).leases_on("postgresql+psycopg://gs@db/gs")
    assert s.instance.lease_s == 30 and s.instance.renew_every_s == 10
    with pytest.raises(ValueError, match="renew_s"):
        InstanceSettings(lease_s=6, renew_s=4)

    def cam(cid: str, street: str) -> Camera:
        return Camera.model_validate(
            {"id": cid, "name": cid, "source": {"url": "x.mp4"}, "problems": ["09006"], "location": {"street": street}}
        )

    f = InstanceSettings.model_validate({"cameras": {"ids": ["xc-02*"], "streets": ["示范街道"]}}).cameras
    assert f.allows(cam("xc-0231", "别的街道")) and f.allows(cam("hd-1", "示范街道"))
    assert not f.allows(cam("hd-2", "别的街道"))
    assert InstanceSettings().cameras.allows(cam("any", ""))
