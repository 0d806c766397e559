"""The web page of `nnzoo serve` in a real browser (Debian's chromium, driven by Playwright): draw a digit with the
mouse and read the probabilities shown, ask who wrote a poem, fill in a table row (a classifier and a regressor), write an acrostic poem and a continued prompt, draw
new GAN samples.

Skipped, with the reason, only where chromium or Playwright is missing (.ci/run installs both).
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import uvicorn_in_a_thread

pytestmark = pytest.mark.slow  # several processes or a browser: -m 'not slow' skips them

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip

if not CHROMIUM.is_file():
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
pytest.importorskip("uvicorn", reason='nnzoo serve needs its extra: pip install "nnzoo[serve]"')
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    import httpx

TIMEOUT_MS = 30_000  # a shared, busy machine: generous, only spent when something is wrong


@contextmanager
def running(run_dirs: list[Path]) -> Iterator[str]:
    """A real server (uvicorn on a free loopback port) in a thread; yields its URL."""
    import uvicorn

    from nnzoo.serve import build_app, url

    with uvicorn_in_a_thread(uvicorn.Config(build_app(run_dirs, device="cpu"), log_level="warning")) as sock:
        yield url(sock)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()


def open_page(browser, base: str):  # noqa: ANN001, ANN201
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(base)
    page.wait_for_selector("body[data-ready=true]")
    return page, errors


def test_draw_write_and_gallery(browser, serve_runs: dict[str, Path]) -> None:  # noqa: ANN001
    with running([serve_runs["digits"], serve_runs["poems"], serve_runs["cgan"]]) as base:
        page, errors = open_page(browser, base)
        assert page.is_visible("#draw") and page.is_visible("#write") and page.is_visible("#gallery")
        assert "Draw a digit · 画一个数字" in page.inner_text("#draw h2")

        # Draw a 7 with the mouse; lifting it asks for a prediction.
        box = page.locator("#digit-canvas").bounding_box()
        x, y = box["x"], box["y"]
        with page.expect_request(lambda r: "/v1/models/digits/predict?top_k=10" in r.url) as sent:
            page.mouse.move(x + 70, y + 60)
            page.mouse.down()
            page.mouse.move(x + 210, y + 60, steps=10)
            page.mouse.move(x + 120, y + 230, steps=10)
            page.mouse.up()
        page.wait_for_function("document.querySelectorAll('#probs li').length === 10")
        shown = {li.get_attribute("data-label"): float(li.get_attribute("data-probability"))
                 for li in page.locator("#probs li").all()}  # fmt: skip
        assert set(shown) == {str(i) for i in range(10)} and sum(shown.values()) == pytest.approx(1, abs=1e-4)
        top = max(shown, key=shown.get)
        assert page.inner_text("#prediction").startswith(f"{top} · ") and page.inner_text("#probs li.top").startswith(
            top
        )

        # What the page sent: the canvas as it is (280x280, white on black), for the server to prepare as a file.
        pixels = json.loads(sent.value.post_data)["pixels"]
        assert len(pixels) == 280 and all(len(row) == 280 for row in pixels) and pixels[0][0] == 0
        # ...the probabilities shown are the model's answer to it, and what the model saw is the drawing shrunk
        # to its 8x8 input by images.py: ink in the top row and along the diagonal, shown beside the drawing.
        with httpx.Client(trust_env=False, timeout=30) as client:  # straight to loopback, whatever the proxy settings
            answer = client.post(base + "v1/models/digits/predict?top_k=10&show_input=true",
                                 json={"pixels": pixels}).json()  # fmt: skip
        assert shown == pytest.approx(answer["probabilities"], abs=1e-6)
        seen = answer["input"]
        assert len(seen) == 8 and all(len(row) == 8 for row in seen)
        assert max(seen[0]) > 100 and max(seen[-1]) > 100 and seen[-1][0] < 50
        preview = page.evaluate("""() => {
            const c = document.createElement("canvas"); c.width = c.height = 8;
            const g = c.getContext("2d"); g.imageSmoothingEnabled = false;
            g.drawImage(document.querySelector("#model-input"), 0, 0, 8, 8);
            return Array.from(g.getImageData(0, 0, 8, 8).data.filter((_, i) => i % 4 === 0)); }""")
        assert preview == [v for row in seen for v in row]  # the page shows exactly what the model saw

        # An acrostic poem (藏头诗): each line starts with the given character.
        page.fill("#acrostic", "春夏")
        page.fill("#text-seed", "3")
        page.click("#write-button")
        page.wait_for_function("document.querySelector('#poem-text').textContent.length > 0")
        poem = page.text_content("#poem-text")
        assert [line[0] for line in re.findall(r"[^，。\n]+[，。]", poem)] == ["春", "夏"]
        assert "seed 种子 3" in page.inner_text("#poem-meta")

        # Without an acrostic, the prompt is continued for `length` characters.
        page.fill("#acrostic", "")
        page.fill("#prompt", "白日")
        page.fill("#length", "20")
        page.evaluate("document.querySelector('#poem-text').textContent = ''")
        page.click("#write-button")
        page.wait_for_function("document.querySelector('#poem-text').textContent.length > 0")
        text = page.text_content("#poem-text")
        assert text.startswith("白日") and len(text) == 22

        # The gallery draws a grid on load, and a new one (another seed) on 换一批.
        page.wait_for_function("document.querySelector('#samples').src.startsWith('data:image/png;base64,')")
        first = page.get_attribute("#samples", "src")
        page.click("#samples-button")
        page.wait_for_function(f"document.querySelector('#samples').src !== {json.dumps(first)}")
        assert page.evaluate("document.querySelector('#samples').naturalWidth") > 0
        assert errors == [] and page.inner_text("#draw-error") == page.inner_text("#write-error") == ""


def test_who_wrote_this_poem(browser, authors_run: Path) -> None:
    """A text classifier's section: the poem typed is sent as text, a bar per poet shows the model's answer, and
    what the model could not read is said."""
    with running([authors_run]) as base:
        page, errors = open_page(browser, base)
        assert page.is_visible("#authors") and not page.is_visible("#draw") and not page.is_visible("#write")
        assert "Classify a text · 文本分类" in page.inner_text("#authors h2")
        poem = "國破山河在，城春草木深。感時花濺淚，恨別鳥驚心。烽火連三月，家書抵萬金。"  # 50 characters, some unseen
        page.fill("#authors-text", poem)
        with page.expect_request(lambda r: r.url.endswith("/v1/models/tang-authors-lstm/predict?top_k=5")) as sent:
            page.click("#authors-button")
        assert json.loads(sent.value.post_data) == {"text": poem}
        page.wait_for_function("document.querySelectorAll('#authors-probs li').length === 5")
        shown = {li.get_attribute("data-label"): float(li.get_attribute("data-probability"))
                 for li in page.locator("#authors-probs li").all()}  # fmt: skip
        with httpx.Client(trust_env=False, timeout=30) as client:
            answer = client.post(base + "v1/models/tang-authors-lstm/predict?top_k=5", json={"text": poem}).json()
        assert shown == pytest.approx(answer["probabilities"], abs=1e-6)
        assert page.inner_text("#authors-prediction").startswith(f"{answer['label']} · ")
        notes = page.inner_text("#authors-notes")
        assert "the model reads the first 32 characters" in notes and "never seen in training" in notes

        page.fill("#authors-text", "   ")
        page.click("#authors-button")
        page.wait_for_function("document.querySelector('#authors-error').textContent.length > 0")
        assert "some text in it" in page.inner_text("#authors-error") and page.inner_text("#authors-probs") == ""
        assert errors == []


def test_a_table_row_form(browser, table_runs: dict[str, Path]) -> None:  # noqa: ANN001
    """A table model's section: a field per column (numbers start at the training median, text columns offer the
    categories seen and "missing"), the row is sent as JSON and the answer shown: bars for a classifier, a value
    for a regressor."""
    with running([table_runs["penguins"], table_runs["diabetes"]]) as base:
        page, errors = open_page(browser, base)
        assert page.is_visible("#table") and not page.is_visible("#draw") and not page.is_visible("#authors")
        names = page.eval_on_selector_all("#table-form [name]", "els => els.map(e => e.name)")
        assert names == ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year", "island", "sex"]
        page.select_option("#table-form [name=sex]", "")  # a missing cell
        page.fill("#table-form [name=body_mass_g]", "5000")
        with page.expect_request(lambda r: "/v1/models/penguins/predict" in r.url) as sent:
            page.click("#table-button")
        row = json.loads(sent.value.post_data)["row"]
        assert row["sex"] is None and row["body_mass_g"] == 5000 and row["island"] == "Biscoe"
        page.wait_for_function("document.querySelectorAll('#table-probs li').length === 3")
        with httpx.Client(trust_env=False, timeout=30) as client:
            answer = client.post(base + "v1/models/penguins/predict?top_k=3", json={"row": row}).json()
        assert page.inner_text("#table-prediction").startswith(f"{answer['label']} · ")
        page.select_option("#table-model", "diabetes")
        assert "bmi" in page.eval_on_selector_all("#table-form [name]", "els => els.map(e => e.name)")
        page.click("#table-button")
        page.wait_for_function("document.querySelector('#table-prediction').textContent.startsWith('target ≈')")
        assert page.inner_text("#table-probs") == "" and errors == []


def test_sections_follow_the_models_loaded(browser, serve_runs: dict[str, Path]) -> None:  # noqa: ANN001
    with running([serve_runs["poems"]]) as base:
        page, errors = open_page(browser, base)
        assert page.is_visible("#write") and not page.is_visible("#draw") and not page.is_visible("#gallery")
        assert "1 model(s) loaded" in page.inner_text("#status") and errors == []


def test_a_sentiment_model_of_words(browser, tmp_path: Path) -> None:  # noqa: ANN001
    """A review classifier trained on jieba words answers in the text section with the run's own tokenizer:
    what is shown is what the API says, and a word it never saw is named in the notes."""
    from nnzoo.cli import main

    rows = ["label,review"] + [
        f"{i % 2},{'房间很干净，服务也好' if i % 2 else '房间太脏了，服务很差'}" for i in range(80)
    ]
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    run = tmp_path / "reviews"
    assert main(["train", "text-cnn", "--data-file", str(tmp_path / "r.csv"), "--text-column", "review",
                 "--tokenizer", "word", "--epochs", "3", "--set", "data.seq_len=16", "--set", "model_args.filters=8",
                 "--out", str(run), "--quiet"]) == 0  # fmt: skip
    with running([run]) as base:
        page, errors = open_page(browser, base)
        review = "房间很干净，早餐也好"  # 早餐: a word these reviews never had
        page.fill("#authors-text", review)
        page.click("#authors-button")
        page.wait_for_function("document.querySelectorAll('#authors-probs li').length === 2")
        with httpx.Client(trust_env=False, timeout=30) as client:
            answer = client.post(base + "v1/models/reviews/predict?top_k=2", json={"text": review}).json()
        shown = {li.get_attribute("data-label"): float(li.get_attribute("data-probability"))
                 for li in page.locator("#authors-probs li").all()}  # fmt: skip
        assert shown == pytest.approx(answer["probabilities"], abs=1e-6)
        assert "1 token(s) never seen in training read as unknown: 早餐" in page.inner_text("#authors-notes")
        assert errors == []
