"""`smart serve`'s web view in process: the app object answers requests as the socket server
would pass them (tests/e2e/test_serve_browser.py runs the real server under a real browser)."""

import contextlib
import io
import json
import os
import shutil
import threading
import urllib.request

import pymupdf
import pytest
from PIL import Image

from smartcli import Index
from smartcli.cli.web import PictureCache, ViewApp, make_server
from tests.conftest import SAMPLE_CORPUS, run_smart

QUERY = "how do I change the default terminal"  # the README's example
LOCAL = {"Host": "127.0.0.1:8765"}
EXTRAS = {"id", "thumbnail", "picture", "file_url", "marks"}


@pytest.fixture(scope="module")
def served(sample_store, tmp_path_factory):
    store, corpus = sample_store
    index = Index.open(store, warm=True)
    cache = PictureCache(tmp_path_factory.mktemp("pictures"))
    app = ViewApp(index, allowed_hosts={"127.0.0.1", "localhost", "::1"}, cache=cache)
    yield app, store, corpus
    app.call(index.close)
    app.close()


@contextlib.contextmanager
def viewing(store, cache_folder, **options):
    index = Index.open(store)
    app = ViewApp(index, cache=PictureCache(cache_folder), **options)
    try:
        yield app
    finally:
        app.call(index.close)  # on the thread that opened it
        app.close()


def get(app, target, headers=LOCAL):
    return app.handle("GET", target, dict(headers))


def api(app, query, **params):
    from urllib.parse import urlencode

    response = get(app, "/api/search?" + urlencode(dict(q=query, **params)))
    assert response.status == 200, response.body
    return response.json()


def without_extras(answer):
    """The answer without the web view's own fields, and with scores to 5 decimals: a warm server scores
    1-bit states with the compiled kernel, a one-query CLI run with numpy; they agree to 1e-5."""
    return rounded(dict(answer, results=[{k: v for k, v in r.items() if k not in EXTRAS} for r in answer["results"]]))


def rounded(value):
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def test_search_api_returns_what_smart_search_json_prints(served):
    app, store, _ = served
    for options, flags in (({}, []), ({"explain": "1"}, ["--explain"]), ({"k": "3", "mode": "pooled"}, ["-k", "3", "--mode", "pooled"])):
        # A warm process, as the server is (`--queries` keeps the compiled 1-bit kernel, which agrees
        # with a one-query run's numpy path to 1e-5 but may name another token of a near-tie).
        printed = json.loads(
            run_smart("search", "--queries", "-", "--store", store, "--json", *flags, input=QUERY + "\n", check=True).stdout
        )
        answer = api(app, QUERY, **options)
        assert without_extras(answer) == rounded(printed)
        for result in answer["results"]:
            assert result["thumbnail"] == f"/thumb/{result['id']}.png" and result["picture"] == f"/page/{result['id']}.png"
            assert result["file_url"].startswith("file://") and result["file_url"].endswith(f"#page={result['page']}")


def test_scope_and_like_follow_the_cli(served):
    app, store, corpus = served
    printed = json.loads(
        run_smart("search", "wifi", "--store", store, "--json", "--glob", "*.pdf", "--kind", "pdf", "-k", "4", check=True).stdout
    )
    assert without_extras(api(app, "wifi", glob="*.pdf", kind="pdf", k="4")) == rounded(printed)
    first = api(app, QUERY, k="1")["results"][0]
    like = get(app, f"/api/search?like={first['id']}&k=3").json()
    printed = json.loads(
        run_smart("search", "--like", f"{first['path']}:{first['page']}", "--store", store, "--json", "-k", "3", check=True).stdout
    )
    assert like["like"] == dict(printed["like"], id=first["id"])
    assert [r["path"] for r in like["results"]] == [r["path"] for r in printed["results"]]


def test_matched_words_are_boxed_where_the_page_shows_them(served):
    app, _, _ = served
    top = api(app, QUERY, explain="1", k="1")["results"][0]
    assert top["file"] == "terminal-guide.pdf" and top["page"] == 1
    words = {m["word"]: m for m in top["marks"]["words"]}
    assert {"change", "default", "terminal"} <= set(words)
    with pymupdf.open(top["path"]) as doc:
        page = doc[0]
        width, height = page.rect.width, page.rect.height
        for word in ("change", "default", "terminal"):
            (x0, y0, x1, y1) = words[word]["boxes"][0]
            clip = pymupdf.Rect(x0 * width, y0 * height, x1 * width, y1 * height)
            assert page.get_textbox(clip).strip() == word, word  # the box holds exactly that word
            assert words[word]["similarity"] > 0.8


def test_thumbnails_are_pngs_of_the_right_size_and_are_cached_on_disk(served):
    app, _, _ = served
    for result in api(app, QUERY, k="3")["results"]:
        for route, width in (("thumbnail", 320), ("picture", 1200)):
            assert_png_of_page(get(app, result[route]), result, width)
    cached = {path.read_bytes() for path in app.cache.folder.glob("*.png")}
    assert len(cached) == 6 and get(app, result["thumbnail"]).body in cached


def assert_png_of_page(response, result, width):
    assert response.status == 200 and response.content_type == "image/png"
    image = Image.open(io.BytesIO(response.body))
    assert image.format == "PNG" and image.width == width
    if result["kind"] == "pdf":
        with pymupdf.open(result["path"]) as doc:
            rect = doc[result["page"] - 1].rect
    else:
        with Image.open(result["path"]) as original:
            rect = pymupdf.Rect(0, 0, *original.size)
    assert abs(image.height - width * rect.height / rect.width) <= 1


def test_the_picture_cache_is_bounded(tmp_path):
    cache = PictureCache(tmp_path / "pictures", max_bytes=2500)
    for i in range(5):
        cache.put(cache.key("item", i), bytes(1000))
    assert cache.size() <= 2500
    assert cache.get(cache.key("item", 4)) is not None and cache.get(cache.key("item", 0)) is None


def test_only_indexed_pages_by_id_anything_else_is_404(served, tmp_path):
    app, _, _ = served
    known = api(app, QUERY, k="1")["results"][0]["id"]
    for target in (
        "/thumb/../../../../etc/passwd",
        "/thumb/..%2f..%2fetc%2fpasswd.png",
        "/page//etc/passwd.png",
        "/page/%2Fetc%2Fpasswd.png",
        "/thumb/999999.png",
        f"/thumb/{known}.png/..",
        f"/thumb/-{known}.png",
        "/static/../index.py",
        "/static/web.py",
        "/etc/passwd",
        "/api/search/../../x",
    ):
        assert get(app, target).status == 404, target
    assert get(app, "/api/search?like=999999").status == 404
    assert get(app, "/api/search?like=../x").status == 400


def test_a_file_swapped_for_a_link_out_of_the_indexed_folders_is_404(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SAMPLE_CORPUS / "houseplants.pdf", corpus / "plants.pdf")
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(SAMPLE_CORPUS / "hobbies" / "sourdough.pdf", outside / "secret.pdf")
    (corpus / "linked").symlink_to(outside)  # a folder link out of the indexed path
    store = tmp_path / "store"
    run_smart("index", corpus, "--store", store, "--ocr", "never", check=True)
    with viewing(store, tmp_path / "pictures") as app:
        results = api(app, "sourdough starter", k="10")["results"]
        inside = next(r for r in results if r["file"] == "plants.pdf")
        linked = next(r for r in results if r["file"] == "secret.pdf")
        assert get(app, inside["thumbnail"]).status == 200
        assert get(app, linked["thumbnail"]).status == 404  # resolves outside the indexed folder
        os.unlink(corpus / "plants.pdf")
        (corpus / "plants.pdf").symlink_to(outside / "secret.pdf")
        assert get(app, inside["thumbnail"]).status == 404
        assert get(app, inside["picture"]).status == 404


def test_a_hostile_file_name_reaches_the_page_escaped(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    hostile = '<img src=x onerror=alert(1)>\x1b[31m&amp;".pdf'
    shutil.copy(SAMPLE_CORPUS / "houseplants.pdf", corpus / hostile)
    store = tmp_path / "store"
    run_smart("index", corpus, "--store", store, "--ocr", "never", check=True)
    with viewing(store, tmp_path / "pictures") as app:
        response = get(app, "/api/search?q=watering&explain=1&k=1")
        assert response.status == 200 and response.content_type == "application/json"
        body = response.body.decode("ascii")
        assert "<" not in body and ">" not in body and "&" not in body and "\x1b" not in body
        result = json.loads(body)["results"][0]
        assert result["file"] == hostile
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        # The page itself puts text in with textContent only.
        script = get(app, "/static/app.js").body.decode()
        assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "document.write" not in script


def test_the_token_is_enforced_on_every_request(served):
    app, _, _ = served
    known = api(app, QUERY, k="1")["results"][0]["id"]
    with viewing(app.index.path, app.cache.folder, token="s3cret-token") as guarded:
        check_token(guarded, known)


def check_token(guarded, known):
    for target in ("/", "/static/app.js", "/api/search?q=wifi", f"/thumb/{known}.png", "/nothing"):
        assert get(guarded, target, {}).status == 403, target
        assert get(guarded, target + ("&" if "?" in target else "?") + "token=wrong", {}).status == 403
        assert get(guarded, target, {"Cookie": "smart_token=wrong"}).status == 403
    page = get(guarded, "/?token=s3cret-token", {})
    assert page.status == 200 and "smart_token=s3cret-token" in page.headers["Set-Cookie"] and "HttpOnly" in page.headers["Set-Cookie"]
    assert get(guarded, f"/thumb/{known}.png", {"Cookie": "smart_token=s3cret-token"}).status == 200
    assert get(guarded, "/api/search?q=wifi", {"Authorization": "Bearer s3cret-token"}).status == 200


def test_loopback_server_refuses_foreign_host_headers_and_limits_queries(served):
    app, _, _ = served
    assert get(app, "/", {"Host": "evil.example:8765"}).status == 403  # DNS rebinding
    assert get(app, "/", {"Host": "localhost:8765"}).status == 200
    assert get(app, "/api/search?q=" + "a" * 1001).status == 400
    for k in ("0", "101", "ten"):
        assert get(app, f"/api/search?q=wifi&k={k}").status == 400
    assert get(app, "/api/search?q=wifi&mode=fast").status == 400
    assert get(app, "/api/search?q=%20").status == 400
    assert app.handle("POST", "/api/search?q=wifi", LOCAL).status == 405


def test_the_socket_server_serves_the_app(served):
    app, _, _ = served
    server = make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        with urllib.request.urlopen(base + "/") as response:
            assert response.status == 200 and b"/static/app.js" in response.read()
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        with urllib.request.urlopen(base + "/api/search?q=wifi&k=2") as response:
            assert len(json.loads(response.read())["results"]) == 2
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def tiny_clip_store(tiny_checkpoints, tmp_path_factory):
    corpus = tmp_path_factory.mktemp("clip-serve")
    shutil.copytree(SAMPLE_CORPUS / "photos", corpus / "photos")
    shutil.copy(SAMPLE_CORPUS / "houseplants.pdf", corpus / "houseplants.pdf")
    store = tmp_path_factory.mktemp("clip-serve-store") / "store"
    run_smart("index", corpus, "--store", store, "--model", tiny_checkpoints["clip"], check=True)
    return store


def test_image_model_stores_get_heat_maps_of_the_matched_patches(tiny_clip_store, tmp_path):
    with viewing(tiny_clip_store, tmp_path / "pictures") as app:
        answer = api(app, "a photo of the sunset", explain="1", k="5")
        assert answer["results"]
        for result in answer["results"]:
            heat = result["marks"]["heat"]
            assert heat["rows"] * heat["cols"] == 16  # the tiny CLIP: 32 px / 8 px patches
            # CLIP centre-crops a square: the grid covers the middle of a wide or tall picture.
            x0, y0, x1, y1 = heat["region"]
            assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 and (x0 == 0 or y0 == 0)
            best = {}
            for match in result["matches"]:
                best[match["doc_token"]] = max(best.get(match["doc_token"], -2), match["similarity"])
            assert {i for i, v in enumerate(heat["cells"]) if v is not None} == set(best)
            for patch, similarity in best.items():
                assert heat["cells"][patch] == pytest.approx(similarity, abs=1e-5)
            assert_png_of_page(get(app, result["thumbnail"]), result, 320)
