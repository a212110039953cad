"""`smart search --image PATH`: a picture as the query, scored against the same store the same way."""

from __future__ import annotations

from pathlib import Path

from smartcli.output import warn


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


def encode_image_query(searcher, image: Path):
    """The picture encoded as a query by the store's model, or None (said on stderr) when it cannot be."""
    from smartcli.discovery import UnreadableFile
    from smartcli.render import load_image

    encoder = searcher.encoder
    if not encoder.info.consumes_pixels:
        warn(f"--image needs a store built with an image model; this one uses {encoder.info.name}, which reads text")
        return None
    try:
        picture = load_image(str(image), encoder.pixel_cap)
    except UnreadableFile as exc:
        warn(f"{image}: {exc}")
        return None
    return encoder.encode_images([picture])[0]
