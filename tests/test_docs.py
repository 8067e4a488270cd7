"""The documentation site: builds with warnings as errors, every page loads in a browser
without console errors, every internal link resolves.

Oracles: Sphinx's exit status under ``-W`` (a broken cross-reference, malformed docstring
markup or a page missing from every table of contents fails the build); Python's HTML
parser over the built files for the links (each internal ``href``/``src`` must name an
existing file, and a ``#fragment`` an ``id`` on the target page); and headless Chromium
(Debian's ``chromium``, started as in ``tests/test_cli_report.py``) driven over the
DevTools protocol, which reports every console error, uncaught exception and failed
resource load of every page. The build executes no notebook (``nb_execution_mode =
"off"``): their stored outputs are rendered.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # a full Sphinx build and a browser visit of every page

RESOURCE_ATTRS = {"a": "href", "link": "href", "script": "src", "img": "src", "iframe": "src"}


class _Links(HTMLParser):
    """The internal links and the anchors (``id``/``name``) of one page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.anchors: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for key in ("id", "name"):
            if values.get(key):
                self.anchors.add(values[key])
        target = values.get(RESOURCE_ATTRS.get(tag, ""))
        if target:
            self.links.append(target)


def _parse(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "html"
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(ROOT / "docs"), str(out)],
        capture_output=True, text=True, timeout=900, check=False, cwd=ROOT,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    print(f"docs built in {seconds:.1f} s")
    return out


def _pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts)


def test_build_has_every_section(site):
    names = {p.relative_to(site).as_posix() for p in _pages(site)}
    for page in (
        "index.html",
        "getting-started.html",
        "concepts.html",
        "migration.html",
        "architecture.html",
        "about.html",
        "user-guide/models.html",
        "user-guide/posteriors.html",
        "user-guide/holdout.html",
        "user-guide/segments.html",
        "user-guide/comparison.html",
        "user-guide/report.html",
        "user-guide/scale.html",
        "user-guide/calendar-time.html",
        "user-guide/covariates.html",
        "notebooks/01_quickstart.html",
        "notebooks/04_model_comparison.html",
        "api/generated/clvbayes.predict.customers.html",
        "api/generated/clvbayes.models.fitted.html",
    ):
        assert page in names, page
    # every public module has its API page
    modules = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / "clvbayes").rglob("*.py")
    } - {"clvbayes.__main__"}
    missing = sorted(m for m in modules if f"api/generated/{m}.html" not in names)
    assert not missing, missing
    # notebooks come with their stored outputs (figures), not executed at build time
    quickstart = (site / "notebooks/01_quickstart.html").read_text()
    assert quickstart.count("<img") >= 3
    assert (
        "predict_customers" in (site / "api/generated/clvbayes.predict.customers.html").read_text()
    )


def test_every_internal_link_resolves(site):
    parsed = {page: _parse(page) for page in _pages(site)}
    broken = []
    for page, links in parsed.items():
        for link in links.links:
            parts = urlsplit(link)
            if parts.scheme in ("http", "https", "mailto", "javascript", "data"):
                continue
            assert parts.scheme in ("", "file"), f"{page}: {link}"
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file() or site.resolve() not in target.resolve().parents:
                broken.append(f"{page.relative_to(site)} -> {link}")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html":
                anchors = (parsed.get(target) or _parse(target)).anchors
                if fragment not in anchors:
                    broken.append(f"{page.relative_to(site)} -> {link} (no id {fragment!r})")
    assert not broken, "\n".join(broken[:50])


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _Browser:
    """Headless Chromium over the DevTools protocol: navigate, collect console errors."""

    def __init__(self, profile: Path) -> None:
        self.process = subprocess.Popen(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-default-apps", "--no-first-run",
             "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        import urllib.request

        import websocket

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
            targets = json.load(r)
        page = next(t for t in targets if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30)
        self.next_id = 0
        self.events: list[dict] = []
        for method in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.call(method)

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        ident = self.next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                return message.get("result", {})
            self.events.append(message)

    def visit(self, url: str, settle: float = 0.3) -> list[str]:
        """Load ``url``; the console errors, exceptions and failed loads it caused."""
        self.events = []
        result = self.call("Page.navigate", url=url)
        problems = [f"navigation: {result['errorText']}"] if result.get("errorText") else []
        deadline, loaded = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.05, (loaded or deadline) - time.monotonic()))
            try:
                self.events.append(json.loads(self.ws.recv()))
            except websocket_timeout():
                if loaded is not None:
                    break
                continue
            if loaded is None and self.events[-1].get("method") == "Page.loadEventFired":
                loaded = time.monotonic() + settle
        if loaded is None:
            problems.append("no load event within 60 s")
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                args = " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
                problems.append(f"console.{params['type']}: {args}")
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                text = details.get("exception", {}).get("description") or details.get("text")
                problems.append(f"uncaught: {text}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                problems.append(f"{entry.get('source')}: {entry['text']} {entry.get('url', '')}")
        return problems

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def websocket_timeout() -> type[Exception]:
    import websocket

    return websocket.WebSocketTimeoutException


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium is not installed")
def test_every_page_loads_in_headless_chromium_without_console_errors(site, tmp_path):
    pytest.importorskip("websocket", reason="websocket-client drives Chromium's DevTools")
    # the profile in pytest's own temporary directory, not removed as the test ends:
    # Chromium's helper processes can still be writing to it right after it exits (a
    # TemporaryDirectory's cleanup then failed with "Directory not empty: 'Default'")
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    browser = _Browser(profile)
    try:
        found = {}
        for page in _pages(site):
            problems = browser.visit(page.resolve().as_uri())
            if problems:
                found[page.relative_to(site).as_posix()] = problems
        # the check can fail: a page with a script error is reported
        bad = site / "_bad_page_for_the_test.html"
        bad.write_text("<html><body><script>undefinedFunction()</script></body></html>")
        assert any("undefinedFunction" in p for p in browser.visit(bad.as_uri()))
        bad.unlink()
    finally:
        browser.close()
    assert not found, json.dumps(found, indent=1)[:5000]
