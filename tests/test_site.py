"""The documentation site: a strict build, then a real browser on the built pages.

``mkdocs build --strict`` (which draws the figures, renders the API reference and executes the
notebooks) must pass without a single warning. Then the site is served on 127.0.0.1 and opened in
headless Chromium (Debian's ``chromium``, driven by Playwright) to check, in both languages, that
Chinese glyphs render with a CJK font, math is typeset by the vendored KaTeX, figures load, the
language switch reaches the other language, search finds Chinese and English words, the copy
button leaves out ``>>>`` prompts and outputs, and no request leaves 127.0.0.1. Every page of
both languages is opened once, and any console error, JavaScript error or failed request (a 404
included) fails the test that caused it. Screenshots go to ``.artifacts/screenshots/``
(git-ignored).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / ".artifacts"
SITE = ARTIFACTS / "site"
SHOTS = ARTIFACTS / "screenshots"
CHROMIUM = os.environ.get("LLMARCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CJK_FONT = re.compile(r"WenQuanYi|Noto Sans CJK|Noto Serif CJK|Source Han|Droid Sans Fallback|AR PL", re.I)

# language -> (root URL path, an H1 fragment, the name of the other language)
LANGUAGES = {
    "zh": ("/", "引言", "en"),
    "en": ("/en/", "Introduction", "zh"),
}
QUERIES = {"zh": "注意力", "en": "attention"}


@pytest.fixture(scope="module")
def site() -> dict:
    """Build the whole site into .artifacts/site with --strict; return the build log."""
    shutil.rmtree(SITE, ignore_errors=True)
    SITE.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", MPLBACKEND="Agg")
    command = [sys.executable, "-m", "mkdocs", "build", "--site-dir", str(SITE)]
    result = subprocess.run(command + ["--strict"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=1200)
    if result.returncode != 0:
        # test_strict_build_has_no_warnings reports the failure; the browser tests still look at
        # what a lenient build makes of the site instead of erroring out all together
        subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    return {"returncode": result.returncode, "log": result.stdout + result.stderr}


def test_strict_build_has_no_warnings(site):
    log = site["log"]
    warnings = [line for line in log.splitlines() if re.match(r"\s*(WARNING|ERROR)\b", line)]
    assert site["returncode"] == 0, f"mkdocs build --strict failed:\n{log[-6000:]}"
    assert not warnings, "warnings in the build:\n" + "\n".join(warnings)


def test_every_language_has_every_page(site):
    zh = {p.relative_to(SITE) for p in SITE.rglob("index.html") if p.relative_to(SITE).parts[0] != "en"}
    en = {p.relative_to(SITE / "en") for p in (SITE / "en").rglob("index.html")}
    assert zh and zh == en, f"pages only in zh: {sorted(zh - en)}; only in en: {sorted(en - zh)}"
    # executed notebooks keep their outputs (images) in both languages
    for path in (SITE / "notebooks", SITE / "en" / "notebooks"):
        for page in path.rglob("index.html"):
            assert "data:image/png;base64" in page.read_text("utf-8"), f"{page} has no rendered output"


def test_no_placeholders_or_cdn_in_the_built_html(site):
    for page in SITE.rglob("*.html"):
        text = page.read_text("utf-8")
        body = re.sub(r"<script.*?</script>", "", text, flags=re.S)
        visible = re.sub(r"<[^>]+>", " ", body)
        assert not re.search(r"\btodo\b|\btbd\b|待补充", visible, re.I), f"placeholder text in {page}"
        for tag in re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", text):
            assert not re.search(r'(?:src|href)="(?:https?:)?//', tag) or 'rel="canonical"' in tag \
                or 'hreflang' in tag, f"{page.relative_to(SITE)} loads a remote resource: {tag}"


# --------------------------------------------------------------------------- browser


def _chromium_or_skip():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"browser test skipped: no Chromium at {CHROMIUM} "
                    "(install it with: apt-get install -y chromium fonts-wqy-microhei)")
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError:  # pragma: no cover - playwright is in the test extra
        pytest.skip("browser test skipped: the playwright package is not installed")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def server(site):
    assert (SITE / "index.html").exists(), "the site did not build:\n" + site["log"][-4000:]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(SITE)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser_session(server):
    _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
        requests, failures, errors = [], [], []
        context.on("request", lambda request: requests.append(request.url))
        context.on("response", lambda response: response.status >= 400 and failures.append(
            f"{response.status} {response.url}"))
        # a request cancelled because the test navigated on (net::ERR_ABORTED) is not a failure
        context.on("requestfailed", lambda request: request.failure != "net::ERR_ABORTED" and
                   failures.append(f"{request.failure} {request.url}"))
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(f"JavaScript error on {page.url}: {error}"))
        page.on("console", lambda message: message.type == "error" and errors.append(
            f"console error on {page.url}: {message.text} ({message.location.get('url')})"))
        yield {"base": server, "page": page, "context": context, "requests": requests,
               "failures": failures, "errors": errors}
        browser.close()


@pytest.fixture(autouse=True)
def _clean_console(request):
    """Fail a browser test on any console error, JavaScript error or failed request it caused."""
    if "browser_session" not in request.fixturenames:
        yield
        return
    session = request.getfixturevalue("browser_session")
    seen = {key: len(session[key]) for key in ("failures", "errors")}
    yield
    session["page"].wait_for_timeout(200)  # let late console messages and responses arrive
    new = {key: session[key][seen[key]:] for key in seen}
    assert not new["failures"], "failed requests:\n" + "\n".join(new["failures"])
    assert not new["errors"], "console or JavaScript errors:\n" + "\n".join(new["errors"])


def _pages_of_the_site() -> list[str]:
    """URL paths of every built page (both languages), e.g. ``/``, ``/en/api/``."""
    relative = (p.parent.relative_to(SITE).as_posix() for p in SITE.rglob("index.html"))
    return sorted("/" if rel == "." else f"/{rel}/" for rel in relative)


def _open(session, path: str):
    page = session["page"]
    page.goto(session["base"] + path, wait_until="networkidle")
    return page


def _platform_fonts(session, page, selector: str) -> list[dict]:
    """Fonts Chromium actually used to draw the text of ``selector`` (DevTools protocol)."""
    cdp = session["context"].new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        assert node, f"no element {selector!r}"
        return cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    finally:
        cdp.detach()


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_page_renders_chinese_math_and_figures(browser_session, lang):
    path, heading, _ = LANGUAGES[lang]
    page = _open(browser_session, path)
    assert page.evaluate("document.documentElement.lang") == lang
    assert heading in page.locator("article h1").first.inner_text()
    # Chinese text on the page, drawn with a CJK font (the en page names the source article in Chinese)
    selector = "article h1" if lang == "zh" else "article p"
    assert re.search(r"[\u4e00-\u9fff]", page.locator(selector).first.inner_text())
    fonts = _platform_fonts(browser_session, page, selector)
    cjk = [f for f in fonts if CJK_FONT.search(f["familyName"]) and f["glyphCount"] > 0]
    assert cjk, f"no CJK font drew the Chinese text of {path}: {fonts}"
    # math typeset by KaTeX: display and inline formulas, no raw TeX left behind
    page.wait_for_selector(".katex-display")
    assert page.locator(".arithmatex .katex").count() >= 5
    assert page.locator(".arithmatex:not(:has(.katex))").count() == 0
    # every figure loads
    images = page.evaluate(
        "Array.from(document.querySelectorAll('article img')).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
    assert len(images) >= 2, images
    assert all(complete and width > 0 for _, complete, width in images), images
    page.screenshot(path=str(SHOTS / f"{lang}-index.png"), full_page=True)
    page.locator("article img").first.screenshot(path=str(SHOTS / f"{lang}-figure.png"))


@pytest.mark.parametrize("lang", list(LANGUAGES))
@pytest.mark.parametrize("start", ["", "api/", "notebooks/masks/"])
def test_language_switch_reaches_the_other_language(browser_session, lang, start):
    path, _, other = LANGUAGES[lang]
    page = _open(browser_session, path + start)
    page.locator(".md-header__option .md-select").first.hover()
    page.locator(f'a.md-select__link[hreflang="{other}"]').click()
    page.wait_for_load_state("networkidle")
    assert page.evaluate("document.documentElement.lang") == other
    assert urlparse(page.url).path == LANGUAGES[other][0] + start


@pytest.mark.parametrize("lang", list(LANGUAGES))
@pytest.mark.parametrize("query_lang", list(QUERIES))
def test_search_finds_chinese_and_english_words(browser_session, lang, query_lang):
    page = _open(browser_session, LANGUAGES[lang][0])
    page.keyboard.press("/")
    box = page.locator("input.md-search__input")
    box.fill("")
    box.press_sequentially(QUERIES[query_lang], delay=30)
    box.press("End")  # Material reacts to key events; typed CJK text arrives without one
    page.wait_for_selector(".md-search-result__item", timeout=15_000)
    hits = page.locator(".md-search-result__item")
    assert hits.count() > 0
    page.screenshot(path=str(SHOTS / f"{lang}-search-{query_lang}.png"))


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_copy_button_leaves_out_prompts_and_output(browser_session, lang):
    page = _open(browser_session, LANGUAGES[lang][0])
    block = page.locator("div.language-pycon").first
    block.hover()
    block.locator("button.md-code__button[data-md-type=copy]").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("import torch"), copied
    lines = copied.splitlines()
    assert not any(line.startswith((">>>", "... ")) for line in lines), copied
    assert "True" not in lines, copied  # the doctest's expected output is not copied


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_dark_mode_toggle(browser_session, lang):
    page = _open(browser_session, LANGUAGES[lang][0])
    before = page.evaluate("document.body.getAttribute('data-md-color-scheme')")
    page.locator("form[data-md-component=palette] label:visible").first.click()
    after = page.evaluate("document.body.getAttribute('data-md-color-scheme')")
    assert {before, after} == {"default", "slate"}


def test_no_request_left_127_0_0_1(browser_session):
    # visit the remaining pages too, then look at every request made during the session
    for lang in LANGUAGES:
        for sub in ("api/", "notebooks/masks/"):
            page = _open(browser_session, LANGUAGES[lang][0] + sub)
            page.screenshot(path=str(SHOTS / f"{lang}-{sub.strip('/').replace('/', '-')}.png"))
    requests = browser_session["requests"]
    assert requests
    remote = sorted({url for url in requests if urlparse(url).scheme in ("http", "https", "ws", "wss")
                     and urlparse(url).hostname != "127.0.0.1"})
    assert not remote, f"requests left 127.0.0.1: {remote}"
    assert not browser_session["failures"], f"failed requests: {browser_session['failures']}"
    assert not browser_session["errors"], f"console errors: {browser_session['errors']}"


def test_every_page_opens_without_console_errors_or_failed_requests(browser_session):
    # the autouse fixture _clean_console fails this test on any problem, naming the page or URL;
    # and a code block whose lines fit 88 columns must not scroll sideways in a 1280-px window
    pages = _pages_of_the_site()
    assert "/" in pages and "/en/" in pages and len(pages) >= 20, pages
    scrolling = []
    for path in pages:
        page = _open(browser_session, path)
        assert page.evaluate("document.documentElement.lang") in LANGUAGES, path
        blocks = page.evaluate("""Array.from(document.querySelectorAll('article pre > code'))
            .filter(c => c.offsetParent !== null)           // shown, not in a closed <details>
            .map(c => [Math.max(...c.textContent.split('\\n').map(line => line.length)),
                       c.scrollWidth, c.clientWidth])""")
        scrolling += [f"{path}: {columns} columns, {scroll} > {width} px"
                      for columns, scroll, width in blocks if columns <= 88 and scroll > width]
    assert not scrolling, "code blocks of at most 88 columns that scroll:\n" + "\n".join(scrolling)
