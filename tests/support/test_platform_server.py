"""The test platform (platform_server.py) implements docs/platform-api.md: checked over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from .platform import PlatformServer, sign_callback

REPO = Path(__file__).resolve().parents[2]
JPEG = b"\xff\xd8\xff\xe0 fake jpeg \r\n--boundary-ish\r\n\x00\x01" * 50
MP4 = bytes(range(256)) * 40 + b"\r\n\r\n--"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def evidence(kind: str, filename: str, data: bytes, content_type: str, url: str | None = None) -> dict:
    item = {"kind": kind, "filename": filename, "sha256": sha(data), "bytes": len(data), "content_type": content_type}
    if url:
        item["url"] = url
    return item


def make_case(key: str, ev: list[dict], **over: object) -> dict:
    case = {
        "sxdm": "11010709006",
        "sxmc": "占道经营",
        "source": "视频发现",
        "case_type": "事件",
        "description": "人行道上有摊贩占道经营",
        "address": "幸福路 12 号",
        "lon": 116.223,
        "lat": 39.906,
        "crs": "EPSG:4490",
        "grid_code": "110107001002003",
        "district_code": "110107",
        "street": "示范街道",
        "community": "幸福社区",
        "department": {"name": "城管执法局", "code": "CGZF"},
        "co_dispatch_street": True,
        "area_class": "一般区",
        "urgency": "一般",
        "deadline": "2026-03-02T12:00:00+08:00",
        "detected_at": "2026-03-02T10:05:00+08:00",
        "first_seen_at": "2026-03-02T10:00:00+08:00",
        "camera_id": "xc-0231",
        "legacy_code": "0901",
        "recurrence_of": None,
        "gridsight_case_id": 7,
        "idempotency_key": key,
        "evidence": ev,
    }
    case.update(over)
    return case


def multipart(case: dict, files: dict[str, tuple[bytes, str]], part: str = "case") -> list:
    parts: list = [(part, (None, json.dumps(case, ensure_ascii=False).encode(), "application/json"))]
    parts += [("file", (name, data, ctype)) for name, (data, ctype) in files.items()]
    return parts


def two_file_case(key: str, **over: object) -> tuple[dict, list]:
    case = make_case(
        key,
        [evidence("annotated", "a.jpg", JPEG, "image/jpeg"), evidence("clip", "clip.mp4", MP4, "video/mp4")],
        **over,
    )
    return case, multipart(case, {"a.jpg": (JPEG, "image/jpeg"), "clip.mp4": (MP4, "video/mp4")})


class Receiver:
    """A tiny HTTP server on 127.0.0.1: records POSTs (answers `status`), serves `files` on GET."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        self.files: dict[str, bytes] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.posts.append((self.path, dict(self.headers), body))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):
                data = outer.files.get(self.path.split("?")[0])
                self.send_response(200 if data is not None else 404)
                self.send_header("Content-Length", str(len(data or b"")))
                self.end_headers()
                self.wfile.write(data or b"")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def plat(tmp_path_factory: pytest.TempPathFactory):
    with PlatformServer(tmp_path_factory.mktemp("platform")) as server:
        yield server


@pytest.fixture
def api(plat: PlatformServer):
    plat.admin.faults()  # every test starts without faults
    with httpx.Client(base_url=plat.base_url, timeout=10) as client:
        yield client
    plat.admin.faults()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def stored_keys(plat: PlatformServer) -> set[str]:
    return {c["idempotency_key"] for c in plat.admin.cases()}


# ------------------------------------------------------------------ filing
def test_multipart_with_two_files_then_replay(plat, api):
    case, parts = two_file_case("mp-1")
    first = api.post("/cases", files=parts, headers={"Idempotency-Key": "mp-1"})
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "accepted"
    case_id = first.json()["case_id"]

    again = api.post("/cases", files=parts, headers={"Idempotency-Key": "mp-1"})
    assert again.status_code == 200
    assert again.json() == first.json()

    stored = plat.admin.case(case_id)
    assert stored["idempotency_key"] == "mp-1" and stored["form"] == "multipart"
    assert stored["payload"] == case
    files = {f["filename"]: f for f in stored["files"]}
    assert set(files) == {"a.jpg", "clip.mp4"}
    for name, data in (("a.jpg", JPEG), ("clip.mp4", MP4)):
        assert files[name]["sha256_ok"] is True and files[name]["sha256"] == sha(data)
        assert files[name]["bytes"] == len(data)
        assert Path(files[name]["path"]).read_bytes() == data  # binary-safe multipart parsing
    assert sum(1 for c in plat.admin.cases() if c["idempotency_key"] == "mp-1") == 1
    assert plat.admin.stats()["requests"]["POST /cases"]["replayed"] >= 1


def test_json_with_links_then_platform_fetches_them(plat, api, receiver):
    receiver.files["/ev/a.jpg"] = JPEG
    url = f"{receiver.url}/ev/a.jpg?expires=1&sig=abc"
    case = make_case(
        "json-1",
        [
            evidence("annotated", "a.jpg", JPEG, "image/jpeg", url=url),
            evidence("clean", "b.jpg", b"other", "image/jpeg", url=f"{receiver.url}/ev/b.jpg"),
        ],
    )
    r = api.post("/cases", json=case, headers={"Idempotency-Key": "json-1"})
    assert r.status_code == 201, r.text
    stored = plat.admin.case(r.json()["case_id"])
    assert stored["form"] == "json"
    assert [(f["url"], f["received"]) for f in stored["files"]] == [(url, False), (f"{receiver.url}/ev/b.jpg", False)]

    fetched = {f["filename"]: f for f in plat.admin.fetch_evidence(r.json()["case_id"])["files"]}
    assert fetched["a.jpg"]["sha256_ok"] is True and Path(fetched["a.jpg"]["path"]).read_bytes() == JPEG
    assert fetched["b.jpg"]["received"] is False and "404" in fetched["b.jpg"]["fetch_error"]


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda c, f: c["evidence"][0].update(sha256="0" * 64), "sha256"),
        (lambda c, f: f.pop("clip.mp4"), "no file part"),
        (lambda c, f: f.update({"extra.jpg": (b"x", "image/jpeg")}), "not in evidence"),
        (lambda c, f: c["evidence"][1].update(bytes=1), "bytes"),
        (lambda c, f: c.pop("sxdm"), "sxdm"),
        (lambda c, f: c.update(sxdm="1101070900"), "sxdm"),
        (lambda c, f: c.update(grid_code="110107-01002003"), "grid_code"),
        (lambda c, f: c.update(detected_at="2026-03-02T10:05:00"), "timezone"),
        (lambda c, f: c.update(gridsight_case_id="7"), "gridsight_case_id"),
        (lambda c, f: c.update(co_dispatch_street=True, street=""), "co_dispatch_street"),
        (lambda c, f: c["evidence"][0].update(kind="thumbnail"), "kind"),
        (lambda c, f: c.update(recurrence_of="PC-nope"), "recurrence_of"),
        (lambda c, f: c.update(idempotency_key="other"), "idempotency_key"),
    ],
)
def test_bad_case_is_400_and_not_stored(plat, api, mutate, needle):
    key = f"bad-{sha(needle.encode())[:8]}-{time.monotonic_ns()}"
    case = make_case(
        key, [evidence("annotated", "a.jpg", JPEG, "image/jpeg"), evidence("clip", "clip.mp4", MP4, "video/mp4")]
    )
    files = {"a.jpg": (JPEG, "image/jpeg"), "clip.mp4": (MP4, "video/mp4")}
    mutate(case, files)
    r = api.post("/cases", files=multipart(case, files), headers={"Idempotency-Key": key})
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]
    assert key not in stored_keys(plat)


def test_malformed_bodies_are_400(api):
    key = {"Idempotency-Key": "malformed"}
    r = api.post("/cases", content=b"{nope", headers={**key, "Content-Type": "application/json"})
    assert r.status_code == 400 and "invalid JSON" in r.json()["error"]
    r = api.post("/cases", content=b"sxdm=1", headers={**key, "Content-Type": "text/plain"})
    assert r.status_code == 400 and "Content-Type" in r.json()["error"]
    no_url = make_case("malformed", [evidence("annotated", "a.jpg", JPEG, "image/jpeg")])
    r = api.post("/cases", json=no_url, headers=key)
    assert r.status_code == 400 and "url is required" in r.json()["error"]
    # The case part must be declared application/json (a plain form field is not enough).
    r = api.post("/cases", data={"case": json.dumps(no_url)}, files={"file": ("a.jpg", JPEG)}, headers=key)
    assert r.status_code == 400 and "application/json" in r.json()["error"]


def test_idempotency_key_is_required(api):
    _, parts = two_file_case("nokey")
    r = api.post("/cases", files=parts)
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["error"]
    r = api.post("/cases", files=parts, headers={"Idempotency-Key": "k" * 129})
    assert r.status_code == 400


def test_token_is_required_when_configured(tmp_path):
    with PlatformServer(tmp_path / "p", token="s3cret") as plat:
        _, parts = two_file_case("tok-1")
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            r = httpx.post(f"{plat.base_url}/cases", files=parts, headers={"Idempotency-Key": "tok-1", **headers})
            assert r.status_code == 401 and r.json()["error"]
            assert httpx.get(f"{plat.base_url}/cases/x", headers=headers).status_code == 401
        assert plat.admin.cases() == []
        r = httpx.post(f"{plat.base_url}/cases", files=parts, headers={"Idempotency-Key": "tok-1", **plat.headers})
        assert r.status_code == 201


# ------------------------------------------------------------------ status
def test_lookup_by_idempotency_key(api):
    _, parts = two_file_case("look-1")
    case_id = api.post("/cases", files=parts, headers={"Idempotency-Key": "look-1"}).json()["case_id"]
    r = api.get("/cases", params={"idempotency_key": "look-1"})
    assert r.status_code == 200
    assert r.json() == api.get(f"/cases/{case_id}").json()
    assert r.json()["case_id"] == case_id and r.json()["status"] == "accepted"
    assert api.get("/cases", params={"idempotency_key": "never-sent"}).status_code == 404
    assert api.get("/cases").status_code == 400


def test_status_changes_build_history(plat, api):
    _, parts = two_file_case("hist-1")
    case_id = api.post("/cases", files=parts, headers={"Idempotency-Key": "hist-1"}).json()["case_id"]
    plat.admin.set_status(case_id, "filed", note="立案")
    answer = plat.admin.set_status(case_id, "dispatched", note="派遣到城管执法局")
    assert answer["callback_status"] is None  # no callback configured here

    st = api.get(f"/cases/{case_id}").json()
    assert st["status"] == "dispatched"
    assert [(h["status"], h["note"]) for h in st["history"]] == [
        ("accepted", ""),
        ("filed", "立案"),
        ("dispatched", "派遣到城管执法局"),
    ]
    assert st["updated_at"] == st["history"][-1]["ts"] and st["updated_at"].endswith("+08:00")
    assert api.get("/cases/PC-unknown").status_code == 404
    with pytest.raises(Exception, match="404"):
        plat.admin.set_status("PC-unknown", "filed")
    with pytest.raises(Exception, match="400"):
        plat.admin.set_status(case_id, "finished")


def test_updates(plat, api):
    _, parts = two_file_case("upd-case")
    case_id = api.post("/cases", files=parts, headers={"Idempotency-Key": "upd-case"}).json()["case_id"]
    after = b"after photo"
    update = {
        "kind": "verification",
        "result": "cleared",
        "ts": "2026-03-02T14:00:00+08:00",
        "note": "已清除",
        "evidence": [evidence("after", "after.jpg", after, "image/jpeg")],
    }
    parts = multipart(update, {"after.jpg": (after, "image/jpeg")}, part="update")
    r = api.post(f"/cases/{case_id}/updates", files=parts, headers={"Idempotency-Key": "upd-1"})
    assert r.status_code == 201, r.text
    assert r.json()["case_id"] == case_id and r.json()["status"] == "accepted"
    again = api.post(f"/cases/{case_id}/updates", files=parts, headers={"Idempotency-Key": "upd-1"})
    assert (again.status_code, again.json()) == (200, r.json())

    still = {"kind": "still_present", "result": None, "ts": "2026-03-02T15:00:00+08:00", "note": "", "evidence": []}
    assert api.post(f"/cases/{case_id}/updates", json=still, headers={"Idempotency-Key": "upd-2"}).status_code == 201
    bad = {**still, "kind": "verification"}
    r = api.post(f"/cases/{case_id}/updates", json=bad, headers={"Idempotency-Key": "upd-3"})
    assert r.status_code == 400 and "result" in r.json()["error"]
    assert api.post(f"/cases/{case_id}/updates", json=still).status_code == 400
    assert api.post("/cases/PC-unknown/updates", json=still, headers={"Idempotency-Key": "u4"}).status_code == 404

    stored = plat.admin.case(case_id)["updates"]
    assert [u["payload"]["kind"] for u in stored] == ["verification", "still_present"]
    assert stored[0]["files"][0]["sha256_ok"] is True


def test_status_callback_is_signed(tmp_path, receiver):
    secret = "cb-secret"
    with PlatformServer(
        tmp_path / "p", callback_url=f"{receiver.url}/api/v1/platform/callback", callback_secret=secret
    ) as plat:
        _, parts = two_file_case("cb-1")
        case_id = httpx.post(f"{plat.base_url}/cases", files=parts, headers={"Idempotency-Key": "cb-1"}).json()[
            "case_id"
        ]
        answer = plat.admin.set_status(case_id, "handled", note="处置完成")
        assert answer["callback_status"] == 204 and answer["callback_error"] is None
        receiver.status = 401
        assert plat.admin.set_status(case_id, "closed")["callback_status"] == 401

    assert len(receiver.posts) == 2
    path, headers, body = receiver.posts[0]
    assert path == "/api/v1/platform/callback"
    headers = {k.lower(): v for k, v in headers.items()}
    assert headers["content-type"] == "application/json"
    stamp = headers["x-platform-timestamp"]
    assert abs(int(stamp) - time.time()) < 300
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-platform-signature"], expected)
    assert sign_callback(secret, stamp, body) == expected
    data = json.loads(body)
    assert data["case_id"] == case_id and data["status"] == "handled" and data["note"] == "处置完成"
    assert data["ts"].endswith("+08:00")


# ------------------------------------------------------------------ faults
def test_fail_rate_answers_500_and_stores_nothing(plat, api):
    plat.admin.faults(fail_rate=1)
    _, parts = two_file_case("fail-1")
    r = api.post("/cases", files=parts, headers={"Idempotency-Key": "fail-1"})
    assert r.status_code == 500 and "error" in r.json()
    assert "fail-1" not in stored_keys(plat)
    plat.admin.faults()
    assert api.post("/cases", files=parts, headers={"Idempotency-Key": "fail-1"}).status_code == 201


def test_drop_after_accept_stores_then_closes_the_connection(plat, api):
    plat.admin.faults(drop_after_accept_rate=1)
    _, parts = two_file_case("drop-1")
    with pytest.raises(httpx.TransportError):
        api.post("/cases", files=parts, headers={"Idempotency-Key": "drop-1"})
    [stored] = [c for c in plat.admin.cases() if c["idempotency_key"] == "drop-1"]
    # A replay is never dropped (only requests that store something new are).
    r = api.post("/cases", files=parts, headers={"Idempotency-Key": "drop-1"})
    assert (r.status_code, r.json()["case_id"]) == (200, stored["case_id"])
    assert api.get("/cases", params={"idempotency_key": "drop-1"}).json()["case_id"] == stored["case_id"]
    assert plat.admin.stats()["requests"]["POST /cases"]["dropped_after_accept"] >= 1


def test_delay_answers_slowly_after_storing(plat, api):
    plat.admin.faults(delay_s=0.4)
    _, parts = two_file_case("slow-1")
    t0 = time.monotonic()
    assert api.post("/cases", files=parts, headers={"Idempotency-Key": "slow-1"}).status_code == 201
    assert time.monotonic() - t0 >= 0.4
    _, parts = two_file_case("slow-2")
    with pytest.raises(httpx.ReadTimeout):
        api.post("/cases", files=parts, headers={"Idempotency-Key": "slow-2"}, timeout=0.15)
    assert "slow-2" in stored_keys(plat)


def test_non_json_and_hang_store_nothing(plat, api):
    plat.admin.faults(non_json_rate=1)
    _, parts = two_file_case("html-1")
    r = api.post("/cases", files=parts, headers={"Idempotency-Key": "html-1"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        r.json()
    plat.admin.faults(hang_rate=1)
    with pytest.raises(httpx.ReadTimeout):
        api.post("/cases", files=parts, headers={"Idempotency-Key": "html-1"}, timeout=0.3)
    assert "html-1" not in stored_keys(plat)
    stats = plat.admin.stats()["requests"]["POST /cases"]
    assert stats["fault_non_json"] >= 1 and stats["fault_hang"] >= 1


def test_fault_draws_follow_the_seed(plat, api):
    def outcomes() -> list[int]:
        plat.admin.faults(fail_rate=0.5, seed=42)
        return [api.post("/cases", json={}, headers={"Idempotency-Key": f"seed-{i}"}).status_code for i in range(12)]

    first = outcomes()
    assert first == outcomes()
    assert set(first) == {400, 500}


# ------------------------------------------------------------------ persistence
def test_stop_start_and_kill_keep_everything(tmp_path):
    plat = PlatformServer(tmp_path / "p").start()
    try:
        _, parts = two_file_case("keep-1")
        case_id = httpx.post(f"{plat.base_url}/cases", files=parts, headers={"Idempotency-Key": "keep-1"}).json()[
            "case_id"
        ]
        plat.admin.set_status(case_id, "filed")
        port = plat.port

        plat.stop()
        plat.start()
        assert plat.port == port
        assert httpx.get(f"{plat.base_url}/cases/{case_id}").json()["status"] == "filed"
        plat.kill()
        plat.start()
        st = httpx.get(f"{plat.base_url}/cases/{case_id}").json()
        assert [h["status"] for h in st["history"]] == ["accepted", "filed"]
        r = httpx.post(f"{plat.base_url}/cases", files=parts, headers={"Idempotency-Key": "keep-1"})
        assert (r.status_code, r.json()["case_id"]) == (200, case_id)
        [stored] = plat.admin.cases()
        assert all(f["sha256_ok"] and Path(f["path"]).exists() for f in stored["files"])
        _, parts = two_file_case("keep-2")
        new = httpx.post(f"{plat.base_url}/cases", files=parts, headers={"Idempotency-Key": "keep-2"}).json()
        assert new["case_id"] != case_id
    finally:
        plat.stop()


def test_fault_settings_survive_a_restart(tmp_path):
    with PlatformServer(tmp_path / "p") as plat:
        plat.admin.faults(fail_rate=1, seed=5)
        plat.restart()
        _, parts = two_file_case("persist-1")
        assert httpx.post(f"{plat.base_url}/cases", files=parts, headers={"Idempotency-Key": "x"}).status_code == 500


# ------------------------------------------------------------------ the docs match the server
def test_openapi_document_matches_the_server():
    from .platform_server import STATUSES, CaseIn, EvidenceItem, UpdateIn, VerificationIn

    spec = yaml.safe_load((REPO / "docs/platform-api.openapi.yaml").read_text(encoding="utf-8"))
    assert spec["openapi"].startswith("3.1")
    schemas = spec["components"]["schemas"]
    models = (("Case", CaseIn), ("Update", UpdateIn), ("EvidenceItem", EvidenceItem))
    for name, model in (*models, ("VerificationAnswer", VerificationIn)):
        fields = {f.alias or n for n, f in model.model_fields.items()}
        required = {f.alias or n for n, f in model.model_fields.items() if f.is_required()}
        assert set(schemas[name]["properties"]) == fields, name
        assert set(schemas[name].get("required", [])) == required, name
    assert tuple(schemas["StatusName"]["enum"]) == STATUSES
    paths = spec["paths"]
    assert {"/cases", "/cases/{case_id}", "/cases/{case_id}/updates", "/verifications"} <= set(paths)
    assert "post" in paths["/cases"] and "get" in paths["/cases"]
    assert "platformStatus" in spec["webhooks"]
