"""`smart search --image PATH`: a picture as the query, scored against the same store the same way."""

from __future__ import annotations

from pathlib import Path

from smartcli import cli
from smartcli.output import print_json_line, results_table, stdout, warn


def check_image_query(image: Path) -> bool:
    """Whether the query picture can be read (its header); says why not on stderr."""
    from smartcli.discovery import UnreadableFile
    from smartcli.render import probe_image

    try:
        probe_image(str(image))
        return True
    except UnreadableFile as exc:
        warn(f"{image}: {exc}")
        return False


def run_image_query(searcher, image: Path, weights, top_k: int, json_output: bool) -> int:
    from smartcli.discovery import UnreadableFile
    from smartcli.render import load_image

    encoder = searcher.encoder
    if not encoder.info.consumes_pixels:
        warn(f"--image needs a store built with an image model; this one uses {encoder.info.name}, which reads text")
        return cli.EXIT_USAGE
    try:
        picture = load_image(str(image), encoder.pixel_cap)
    except UnreadableFile as exc:
        warn(f"{image}: {exc}")
        return cli.EXIT_USAGE
    hits = searcher.search_encoded(encoder.encode_images([picture]), weights, top_k)[0]
    if json_output:
        print_json_line({"query": None, "image": str(image.resolve()), "qid": None, "results": [h.as_json() for h in hits]})
    elif hits:
        stdout.print(results_table(f"image: {image}", hits, show_late=weights.needs_tokens))
    else:
        warn("no results: the index holds no encoded pages")
    return cli.EXIT_OK
