"""Options several commands share, declared once (their defaults come from ``smartcli.defaults``)."""

from __future__ import annotations

import typer

from smartcli import defaults

StoreOption = typer.Option(
    None,
    "--store",
    envvar="SMART_STORE",
    help="Store directory. Default: $SMART_STORE, else $XDG_DATA_HOME/smart/store (~/.local/share/smart/store).",
    show_default=False,
    readable=False,  # a store this user may not read is the engine's to say (exit 9), not a usage error
)
DeviceOption = typer.Option(defaults.DEVICE, "--device", help="auto (CUDA when available), cpu or cuda.")
JsonOption = typer.Option(False, "--json", help="Print the result as one JSON object.")
WaitOption = typer.Option(False, "--wait", help="If another writer holds the store, wait for it instead of exiting with code 5.")
QdrantOption = typer.Option(
    None,
    "--qdrant",
    envvar="SMART_QDRANT_URL",
    metavar="URL|PATH",
    help="A Qdrant server or cluster (http(s)://host:6333), or a folder for Qdrant's embedded mode. Default: $SMART_QDRANT_URL. "
    "The API key comes from $SMART_QDRANT_API_KEY.",
    show_default=False,
)
CollectionOption = typer.Option(defaults.QDRANT_COLLECTION, "--collection", help="The Qdrant collection.")
QdrantFormatOption = typer.Option(
    defaults.QDRANT_TOKEN_FORMAT,
    "--qdrant-format",
    help="A new collection's token states: float16, float32, scalar (int8 quantization) or binary (quantization).",
)
ShardsOption = typer.Option(
    None, "--shards", min=1, help="A new collection's shard count. Default: Qdrant's (one per node).", show_default=False
)
ReplicasOption = typer.Option(
    None, "--replicas", min=1, help="A new collection's replication factor. Default: Qdrant's (1).", show_default=False
)
OnDiskOption = typer.Option(
    False, "--on-disk", help="A new collection keeps its vectors on disk (memory-mapped), for collections larger than RAM."
)
CandidatesOption = typer.Option(
    defaults.CANDIDATES,
    "--candidates",
    min=1,
    help="Two-stage search: rank every page by its pooled vector, then score the top K with SMART (only their token states are read; K grows on stores above 5,000 pages).",
)
ExhaustiveOption = typer.Option(False, "--exhaustive", help="Score every page with SMART (no first stage).")


def complete(*choices: str):
    """A shell-completion function offering ``choices``."""
    return lambda incomplete: [choice for choice in choices if choice.startswith(incomplete)]
