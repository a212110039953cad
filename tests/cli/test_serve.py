"""`smart serve`'s web view in process: the app object answers requests as the socket server
would pass them (tests/e2e/test_serve_browser.py runs the real server under a real browser)."""

import contextlib
import gzip
import http.client
import io
import json
import os
import shutil
import socket
import stat
import threading
import time
import urllib.request
from pathlib import Path

import pymupdf
import pytest
from PIL import Image

from smartcli import Index
from smartcli.cli.web import PictureCache, ViewApp
from smartcli.cli.web_server import make_server
from tests.conftest import SAMPLE_CORPUS, run_smart

QUERY = "how do I change the default terminal"  # the README's example
LOCAL = {"Host": "127.0.0.1:8765"}
EXTRAS = {"id", "thumbnail", "picture", "file_url", "marks", "near_duplicate_of"}


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
    assert answer.pop("withheld") == 0
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
            assert result["file_url"] == f"/file/{result['id']}#page={result['page']}"


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


def test_a_file_linked_from_outside_the_indexed_folders_is_not_shown_in_any_way(tmp_path):
    """One rule for a page's text, picture and file: a file whose real path lies outside the
    indexed folders (or that changed since indexing) is left out of the answer, not only its picture."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SAMPLE_CORPUS / "houseplants.pdf", corpus / "plants.pdf")
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(SAMPLE_CORPUS / "hobbies" / "sourdough.pdf", outside / "secret.pdf")
    (corpus / "linked").symlink_to(outside)  # a folder link out of the indexed path
    store = tmp_path / "store"
    run_smart("index", corpus, "--store", store, "--ocr", "never", check=True)
    printed = json.loads(run_smart("search", "sourdough starter", "--store", store, "--json", check=True).stdout)
    secret_snippet = next(r["snippet"] for r in printed["results"] if r["file"] == "secret.pdf")  # the owner's CLI shows it
    with viewing(store, tmp_path / "pictures") as app:
        response = get(app, "/api/search?q=sourdough+starter&k=10&explain=1")
        answer = response.json()
        assert {r["file"] for r in answer["results"]} == {"plants.pdf"}
        assert answer["withheld"] == sum(r["file"] == "secret.pdf" for r in printed["results"]) >= 1
        assert b"secret" not in response.body and secret_snippet[:40].encode() not in response.body
        linked_id = app.call(app.index.item, str(corpus / "linked" / "secret.pdf"), 1).item_id
        for target in (f"/thumb/{linked_id}.png", f"/page/{linked_id}.png", f"/file/{linked_id}", f"/api/search?like={linked_id}"):
            assert get(app, target).status == 404, target
        inside = answer["results"][0]
        assert get(app, inside["thumbnail"]).status == 200 and inside["file_url"] == f"/file/{inside['id']}#page={inside['page']}"
        assert get(app, inside["file_url"].split("#")[0]).read() == (corpus / "plants.pdf").read_bytes()
        os.unlink(corpus / "plants.pdf")
        (corpus / "plants.pdf").symlink_to(outside / "secret.pdf")  # swapped for a link out, after indexing
        for route in ("thumbnail", "picture"):
            assert get(app, inside[route]).status == 404
        assert get(app, inside["file_url"].split("#")[0]).status == 404
        assert api(app, "sourdough starter", k="10")["results"] == []


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


def test_the_token_cookie_is_named_for_the_port_so_two_servers_keep_theirs(served):
    app, _, _ = served
    with (
        viewing(app.index.path, app.cache.folder, token="token-a") as first,
        viewing(app.index.path, app.cache.folder, token="token-b") as second,
    ):
        first.bound(8765)
        second.bound(9000)
        assert get(first, "/?token=token-a", {}).headers["Set-Cookie"].startswith("smart_token_8765=token-a;")
        assert get(second, "/?token=token-b", {}).headers["Set-Cookie"].startswith("smart_token_9000=token-b;")
        both = {"Cookie": "smart_token_8765=token-a; smart_token_9000=token-b"}  # a browser sends a host's cookies to every port
        assert get(first, "/api/search?q=wifi", both).status == 200 and get(second, "/api/search?q=wifi", both).status == 200
        assert get(first, "/api/search?q=wifi", {"Cookie": "smart_token_9000=token-b"}).status == 403


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
    for bad in ("nan", "inf", "-inf", "ten"):  # the error names the parameter (the first-hour pass: NaN's did not)
        refused = get(app, f"/api/search?q=wifi&min_score={bad}")
        assert refused.status == 400 and "min_score" in refused.json()["error"], refused.body


@contextlib.contextmanager
def listening(app, **limits):
    server = make_server(app, "127.0.0.1", 0, **limits)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_the_socket_server_serves_the_app(served):
    app, _, _ = served
    with listening(app) as port:
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(base + "/") as response:
            assert response.status == 200 and b"/static/app.js" in response.read()
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        with urllib.request.urlopen(base + "/api/search?q=wifi&k=2") as response:
            results = json.loads(response.read())["results"]
            assert len(results) == 2
        # Keep-alive: several requests on one connection, a HEAD among them, and a whole file.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("HEAD", "/static/style.css")
        head = connection.getresponse()
        assert head.status == 200 and head.read() == b"" and int(head.headers["Content-Length"]) > 0
        connection.request("GET", results[0]["file_url"].split("#")[0])
        answer = connection.getresponse()
        assert answer.status == 200 and answer.read() == Path(results[0]["path"]).read_bytes()
        connection.request("GET", "/nothing")
        assert connection.getresponse().status == 404
        connection.close()


def raw(port: int, data: bytes, read_for: float = 5.0) -> bytes:
    """Send ``data`` and read until the server closes the connection (or ``read_for`` passes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_for) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            received += b"<still open>"
        return received


def test_the_socket_server_times_out_idle_and_slow_clients_and_refuses_garbage(served):
    app, _, _ = served
    with listening(app, request_timeout=1.0) as port:
        started = time.monotonic()
        assert raw(port, b"") == b""  # connected, said nothing: closed after the request timeout
        assert raw(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ") == b""  # half a head: the same
        assert time.monotonic() - started < 8
        assert raw(port, b"NOT HTTP AT ALL\r\n\r\n").startswith(b"HTTP/1.1 400 ")
        assert raw(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Big: " + b"a" * 100_000 + b"\r\n\r\n").startswith(b"HTTP/1.1 431 ")
        # A request with a body is answered (405), then the connection is closed, not read on.
        posted = raw(port, b"POST /api/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello")
        assert posted.startswith(b"HTTP/1.1 405 ") and not posted.endswith(b"<still open>")
        # An answered keep-alive connection that then idles is closed too.
        idle = raw(port, b"GET /static/style.css HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert idle.startswith(b"HTTP/1.1 200 ") and not idle.endswith(b"<still open>")


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


@pytest.fixture(scope="module")
def kinds_store(tmp_path_factory):
    """One file of each kind a browser opens or saves, and an EPUB whose sections repeat."""
    from tests.corpus import make_pdf
    from tests.formats import write_epub, write_pdf_gz, write_svg

    corpus = tmp_path_factory.mktemp("kinds") / "corpus"
    corpus.mkdir()
    make_pdf(corpus / "harbour.pdf", ["the harbour master logs every ship", "tides and moorings of the old harbour wall"])
    write_pdf_gz(corpus / "lighthouse.pdf.gz", ["the lighthouse keeper trims the lamp at dusk", "fog signals of the lighthouse"])
    write_svg(corpus / "compass rose.svg", "a compass rose with thirty two points for the navigator")
    shutil.copy(SAMPLE_CORPUS / "photos" / "sunset.png", corpus / "sunset.png")
    passage = (
        "Before you sail, check the weather forecast, the tide tables and the moorings; tell the harbour master "
        "where you are going and when you will be back, carry a radio, flares and a life jacket for everyone aboard"
    )
    chapters = [passage + f" (part {n})" for n in range(1, 5)] + ["knots: the bowline, the clove hitch and the reef knot for sailors"]
    write_epub(corpus / "sailing.epub", chapters)
    store = tmp_path_factory.mktemp("kinds-store") / "store"
    run_smart("index", corpus, "--store", store, "--ocr", "never", check=True)
    return store, corpus


def test_the_file_itself_is_served_by_id_under_the_rules_of_its_pages(kinds_store, tmp_path):
    store, corpus = kinds_store
    with viewing(store, tmp_path / "pictures") as app:
        results = api(app, "harbour lighthouse compass sailing", k="20")["results"]
        by_file = {r["file"]: r for r in results}
        expected = {
            "harbour.pdf": ("application/pdf", "inline", (corpus / "harbour.pdf").read_bytes()),
            "lighthouse.pdf.gz": ("application/pdf", "inline", gzip.decompress((corpus / "lighthouse.pdf.gz").read_bytes())),
            "compass rose.svg": ("image/svg+xml", "inline", (corpus / "compass rose.svg").read_bytes()),
            "sailing.epub": ("application/epub+zip", "attachment", (corpus / "sailing.epub").read_bytes()),
        }
        for name, (content_type, disposition, content) in expected.items():
            result = by_file[name]
            link = result["file_url"]
            assert link.startswith(f"/file/{result['id']}")
            assert link.endswith(f"#page={result['page']}") == content_type.endswith("pdf"), link
            response = get(app, link.split("#")[0])
            assert response.status == 200 and response.content_type == content_type, name
            assert response.headers["Content-Disposition"].startswith(disposition + ";")
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            if content_type != "application/pdf":  # an SVG can hold script: it runs nowhere here
                assert response.headers["Content-Security-Policy"].startswith("sandbox;")
            assert response.read() == content, name
        assert "filename*=UTF-8''compass%20rose.svg" in get(app, by_file["compass rose.svg"]["file_url"]).headers["Content-Disposition"]
        harbour = by_file["harbour.pdf"]["id"]
        for target in (
            f"/file/{harbour}/../../etc/passwd",
            f"/file/{harbour}.pdf",
            "/file/999999",
            "/file/-1",
            "/file/%2e%2e/x",
            f"/file/{harbour}/",
        ):
            assert get(app, target).status == 404, target
        with viewing(store, tmp_path / "pictures", token="s3cret-token") as guarded:
            assert get(guarded, f"/file/{harbour}", {}).status == 403
            assert get(guarded, f"/file/{harbour}", {"Cookie": "smart_token=s3cret-token"}).status == 200
        (corpus / "harbour.pdf").write_bytes((corpus / "harbour.pdf").read_bytes() + b"\n")  # changed since indexing
        assert get(app, f"/file/{harbour}").status == 404


def test_near_identical_passages_are_marked_to_fold_into_one_card(kinds_store, tmp_path):
    store, _ = kinds_store
    with viewing(store, tmp_path / "pictures") as app:
        results = api(app, "check the weather and tide tables before you sail", k="8")["results"]
        parts = [r for r in results if r["file"] == "sailing.epub" and "tide tables" in r["snippet"]]
        assert len(parts) == 4
        head = parts[0]
        assert head["near_duplicate_of"] is None and all(r["near_duplicate_of"] == head["id"] for r in parts[1:])
        others = [r for r in results if r not in parts]
        assert others and all(r["near_duplicate_of"] is None for r in others)


def test_near_duplicates_are_judged_by_shared_word_sequences():
    from smartcli.cli.web import near_duplicates

    passage = "tell the harbour master where you are going and when you will be back with the boat"
    texts = [
        passage,
        "knots for sailors: the bowline and the clove hitch and the reef knot",
        passage + " (part 2)",
        passage.upper(),
        "short",
        "short",
    ]
    assert near_duplicates(texts) == [None, None, 0, 0, None, None]


def test_the_picture_cache_is_private(sample_store, tmp_path):
    store, _ = sample_store
    folder = tmp_path / "cache" / "smart" / "pictures"
    folder.mkdir(parents=True, mode=0o755)  # as an older version left it
    folder.chmod(0o755)
    (folder / "old.png").write_bytes(b"x")
    with viewing(store, folder) as app:
        result = api(app, QUERY, k="1")["results"][0]
        assert get(app, result["thumbnail"]).status == 200
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    made = [p for p in folder.glob("*.png") if p.name != "old.png"]
    assert made and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in made)
    fresh = tmp_path / "fresh" / "smart" / "pictures"
    fresh.parent.parent.mkdir()
    with viewing(store, fresh) as app:
        assert get(app, result["thumbnail"]).status == 200
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700 and stat.S_IMODE(fresh.parent.stat().st_mode) == 0o700


def test_a_query_the_engine_cannot_take_is_an_answer_not_a_dropped_connection(served):
    app, _, _ = served
    for query in ("%01", "%E2%80%8B", "%C2%AD", "%7F", "%F0%9F%99%82"):
        response = get(app, f"/api/search?q={query}")
        assert response.status in (200, 400, 500) and response.content_type == "application/json", query
        answer = json.loads(response.body, parse_constant=lambda name, query=query: pytest.fail(f"{name} in the answer to {query}"))
        assert "error" in answer or "results" in answer
