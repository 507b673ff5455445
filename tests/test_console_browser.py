"""The web console in a real headless Chromium (Debian's chromium + chromium-driver, Selenium).

One running appliance (real engine, real vault, a video file of real photos replayed in a loop)
with its console on uvicorn; the browser logs in, watches the live view, enrols the visitor
from it, sees their next visit granted, revokes them, sees the next visit denied; a wrong
password, a forged CSRF token and the login rate limit are refused. Each page is saved as a
screenshot: into docs/console/ (which docs/console.md shows) when EDGE_CONSOLE_SCREENSHOTS=1,
else into a temporary folder, so a test run leaves the checkout as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
DOCS_SHOTS = Path(__file__).resolve().parent.parent / "docs" / "console"
SHOTS = (
    DOCS_SHOTS
    if os.environ.get("EDGE_CONSOLE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "edge-console-shots"
)
NAME = "Door Visitor"


def _skip_reason() -> str | None:
    if CHROMIUM is None or CHROMEDRIVER is None:
        return "needs Debian's chromium and chromium-driver (scripts/setup.sh installs them)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "needs selenium (the test extra)"
    return None


if _skip_reason():
    pytest.skip(_skip_reason(), allow_module_level=True)

from console_helpers import PASSWORD, start_console  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def engine():
    from edge.app import engine_from_config
    from edge.config import Config

    return engine_from_config(Config())


@pytest.fixture(scope="module")
def running(engine, tmp_path_factory):
    r = start_console(tmp_path_factory.mktemp("console"), engine, cycles=3)
    yield r
    r.stop()


@pytest.fixture(scope="module")
def browser():
    profile = tempfile.mkdtemp(prefix="edge-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # The machine is offline: without these Chromium waits on lookups and updates.
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def shot(driver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def wait(driver, seconds: float, condition, message: str):
    return WebDriverWait(driver, seconds, poll_frequency=0.2).until(lambda d: condition(d), message)


def message(driver) -> str:
    return driver.find_element(By.ID, "message").text


def log_in(driver, url: str, password: str) -> None:
    driver.get(f"{url}/console/login")
    box = driver.find_element(By.ID, "password")
    box.clear()
    box.send_keys(password)
    driver.find_element(By.ID, "login-submit").click()


def rows(driver) -> list[dict]:
    """The verdict table as the page shows it: seq, kind and name of each row."""
    table = driver.execute_script(  # read in one go: the page rewrites the table as verdicts arrive
        "return [...document.querySelectorAll('#verdicts tbody tr')]"
        ".map(tr => [...tr.querySelectorAll('td')].map(td => td.textContent))"
    )
    return [{"seq": int(c[0]) if c[0] else None, "kind": c[2], "name": c[3]} for c in table]


def fetch(driver, path: str, method: str = "GET", headers: dict | None = None, body: dict | None = None) -> dict:
    """A fetch() from the page (with its cookies, as an attacker's script on that origin could not)."""
    script = """
const [path, method, headers, body, done] = arguments;
fetch(path, {method, headers, body: body === null ? undefined : JSON.stringify(body), credentials: "same-origin"})
  .then(async r => done({status: r.status, body: await r.text(), retry: r.headers.get("Retry-After")}))
  .catch(e => done({status: -1, body: String(e)}));
"""
    return driver.execute_async_script(script, path, method, headers or {}, body)


def test_the_console_in_a_real_browser(running, browser):
    url, d = running.url, browser
    d.set_script_timeout(30)

    # Nothing is reachable without a login: a page goes to the login, the frame is 401.
    d.get(f"{url}/console/live")
    assert d.current_url.endswith("/console/login")
    assert fetch(d, "/console/api/frame.jpg")["status"] == 401
    assert fetch(d, "/console/api/verdicts/stream")["status"] == 401

    # A wrong password is refused and leaves no session.
    log_in(d, url, "not-the-password")
    wait(d, 10, lambda d: "wrong password" in message(d), "no refusal shown for a wrong password")
    assert d.get_cookie("edge_console") is None
    shot(d, "login")

    log_in(d, url, PASSWORD)
    wait(d, 10, lambda d: d.current_url.endswith("/console/live"), "login did not lead to the live view")
    cookie = d.get_cookie("edge_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # The live view: frames change, and the overlay lists the visitor's face with a track and a decision.
    versions = set()

    def face_listed(d) -> bool:
        versions.add(d.execute_script("return document.getElementById('frame').dataset.version"))
        return d.execute_script("return document.querySelectorAll('#faces tbody tr.face').length") > 0

    wait(d, 30, face_listed, "the live view never listed a face")
    wait(d, 10, lambda d: face_listed(d) and len(versions) >= 3, "the image did not update")
    face = d.execute_script("const f = document.querySelector('#faces tbody tr.face'); return f && f.textContent")
    assert face is None or face.startswith("#"), face  # the face may have walked off since
    assert float(d.find_element(By.ID, "loop-fps").text) > 5
    assert d.find_element(By.ID, "latency").text.endswith("ms")
    width = d.execute_script("return document.getElementById('frame').naturalWidth")
    assert width == 640
    shot(d, "live")

    # Before enrolment the visitor is not let in.
    d.get(f"{url}/console/verdicts")
    wait(d, 30, lambda d: any(r["kind"] in ("unknown", "denied") for r in rows(d)), "no verdict for the stranger")
    assert not any(r["kind"] == "granted" for r in rows(d))

    # Enrol from the live view: capture when the face is in view (a refusal says why), then enrol.
    d.get(f"{url}/console/enrol")
    refusals = []

    def captured(d) -> bool:
        d.find_element(By.ID, "capture").click()
        wait(d, 20, lambda d: message(d) and "checking" not in message(d), "no answer to a capture")
        text = message(d)
        if text.startswith("captured"):
            return True
        refusals.append(text)
        time.sleep(0.3)
        return False

    wait(d, 60, captured, "no capture was accepted")
    assert all(r.startswith(("no face", "capture refused", "2 faces")) for r in refusals), refusals
    wait(d, 10, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#staged img")) == 1, "the capture is not shown")
    shot(d, "enrol-captured")
    d.find_element(By.ID, "live-name").send_keys(NAME)
    d.find_element(By.ID, "enrol-live-submit").click()
    wait(d, 60, lambda d: message(d).startswith("enrolled"), "the enrolment did not finish")
    assert NAME in message(d)
    shot(d, "enrol")

    # Capturing the same face again and enrolling it under another name: the duplicate check says no.
    wait(d, 60, captured, "no second capture was accepted")
    d.find_element(By.ID, "live-name").clear()
    d.find_element(By.ID, "live-name").send_keys("Someone Else")
    d.find_element(By.ID, "enrol-live-submit").click()
    wait(d, 60, lambda d: message(d).startswith("not enrolled"), "a duplicate enrolment was not refused")
    assert f"already enrolled as '{NAME}'" in message(d)
    d.find_element(By.ID, "clear").click()

    # Their next visit is granted, live in the verdict list.
    d.get(f"{url}/console/verdicts")
    wait(
        d, 60, lambda d: any(r["kind"] == "granted" and r["name"] == NAME for r in rows(d)), "no grant after enrolment"
    )
    shot(d, "verdicts")

    # People: listed with their photo count and date; revoke with confirmation.
    d.get(f"{url}/console/people")
    wait(d, 20, lambda d: d.find_elements(By.CSS_SELECTOR, "#people tbody tr"), "nobody listed")
    row = d.find_element(By.CSS_SELECTOR, "#people tbody tr")
    cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
    assert cells[0] == NAME and cells[1] == "1" and cells[2].startswith("20")
    shot(d, "people")

    # A forged CSRF token (and none at all) is refused: the person stays enrolled.
    forged = fetch(
        d,
        "/console/api/revoke",
        "POST",
        {"Content-Type": "application/json", "X-CSRF-Token": "forged"},
        {"name": NAME, "confirm": NAME},
    )
    assert forged["status"] == 403 and "CSRF" in json.loads(forged["body"])["error"]
    missing = fetch(
        d, "/console/api/revoke", "POST", {"Content-Type": "application/json"}, {"name": NAME, "confirm": NAME}
    )
    assert missing["status"] == 403
    assert [p["name"] for p in json.loads(fetch(d, "/console/api/people")["body"])["people"]] == [NAME]

    row.find_element(By.CSS_SELECTOR, "button.revoke").click()
    wait(d, 5, lambda d: d.find_element(By.ID, "confirm").is_displayed(), "no confirmation asked")
    d.find_element(By.ID, "confirm-input").send_keys(NAME)
    shot(d, "revoke")
    d.find_element(By.ID, "confirm-yes").click()
    wait(d, 30, lambda d: message(d).startswith("revoked"), "the revocation did not finish")
    wait(d, 10, lambda d: not d.find_elements(By.CSS_SELECTOR, "#people tbody tr"), "still listed after revoking")
    time.sleep(0.5)  # the loop re-reads the vault before its next frame; a frame in progress may still grant
    seqs = [r["seq"] for r in json.loads(fetch(d, "/console/api/verdicts")["body"])["records"] if r.get("seq")]
    last_seq = max(seqs)

    # The next visit is denied.
    d.get(f"{url}/console/verdicts")

    def denied_after_revoke(d) -> bool:
        later = [r for r in rows(d) if r["seq"] is not None and r["seq"] > last_seq]
        assert not any(r["kind"] == "granted" for r in later), later
        return any(r["kind"] == "denied" for r in later)

    wait(d, 60, denied_after_revoke, "no denial after the revocation")

    # The filter: only granted rows when only "granted" is ticked.
    for box in d.find_elements(By.CSS_SELECTOR, "#filters input"):
        if box.get_attribute("value") != "granted":
            box.click()
    wait(d, 10, lambda d: rows(d) and all(r["kind"] == "granted" for r in rows(d)), "the filter did not apply")

    # Enrol from uploaded photos: another person, two photos.
    d.get(f"{url}/console/enrol")
    d.find_element(By.ID, "upload-name").send_keys("Eileen Collins")
    d.find_element(By.ID, "upload-photos").send_keys("\n".join(str(p) for p in running.extra["upload"]))
    d.find_element(By.CSS_SELECTOR, "#enrol-upload button[type=submit]").click()
    wait(d, 60, lambda d: message(d).startswith(("enrolled", "not enrolled")), "the upload was not answered")
    assert message(d) == "enrolled Eileen Collins: 2 photo(s)", message(d)

    # The same frames as MJPEG, which Chromium shows in an <img> as it arrives.
    d.execute_script(
        "const i = document.createElement('img'); i.id = 'mjpeg'; i.src = '/console/api/stream.mjpeg';"
        "document.body.append(i);"
    )
    wait(d, 20, lambda d: d.execute_script("return document.getElementById('mjpeg').naturalWidth") == 640, "no MJPEG")
    d.execute_script("document.getElementById('mjpeg').src = ''")

    d.get(f"{url}/console/status")
    wait(d, 30, lambda d: d.find_elements(By.CSS_SELECTOR, "#checks tbody tr"), "no checks on the status page")
    status = d.find_element(By.TAG_NAME, "main").text
    assert "models" in status and "model_version" in status and "MiB free" in status
    shot(d, "status")

    # The door display needs no login and shows no names by default.
    d.get(f"{url}/console/door")
    wait(
        d,
        60,
        lambda d: "door idle" not in d.find_element(By.TAG_NAME, "body").get_attribute("class"),
        "the door display never changed",
    )
    assert NAME not in d.find_element(By.TAG_NAME, "body").text
    shot(d, "door")
    # A liveness challenge announced by the loop (as its liveness judge does) reaches the door as a prompt.
    running.appliance.post_event("liveness_challenge", track_id=99, prompt="left", within_s=5.0)
    wait(d, 10, lambda d: "Turn your head to the left" in d.find_element(By.ID, "door-prompt").text, "no prompt")
    shot(d, "door-prompt")

    # Log out: the session is gone server-side too.
    d.get(f"{url}/console/live")
    d.find_element(By.ID, "logout").click()
    wait(d, 10, lambda d: d.current_url.endswith("/console/login"), "logout did not lead to the login")
    assert fetch(d, "/console/api/live")["status"] == 401

    # The login rate limit: after 5 failures a minute even the right password is refused (429).
    for _ in range(5):
        assert (
            fetch(d, "/console/api/login", "POST", {"Content-Type": "application/json"}, {"password": "guess"})[
                "status"
            ]
            == 401
        )
    log_in(d, url, PASSWORD)
    wait(d, 10, lambda d: "too many failed logins" in message(d), "no rate limit")
    limited = fetch(d, "/console/api/login", "POST", {"Content-Type": "application/json"}, {"password": PASSWORD})
    assert limited["status"] == 429 and 1 <= int(limited["retry"]) <= 60
    assert d.current_url.endswith("/console/login")
    shot(d, "rate-limited")

    # The loop kept up while it was watched.
    assert running.appliance.stats()["frame_errors"] == 0
    assert running.console.preview.encoded > 10
