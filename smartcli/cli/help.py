"""Readable placeholders in ``--help``: ``--store DIR``, ``--top-k N``, ``QUERY``, and nothing after
a flag, instead of Typer's ``<path>``, ``<int range>``, ``<str>`` and ``<bool>``."""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import get_args, get_origin

import click
from typer.core import TyperArgument, TyperGroup

# By parameter name, where a word says more than the type; the rest by type (see placeholder).
NAMED = {
    "store": "DIR",
    "paths": "PATH",  # Typer adds the "..." of a list
    "query": "QUERY",
    "queries": "FILE",
    "pairs": "FILE",
    "image": "PATH",
    "model": "MODEL",
    "device": "auto|cpu|cuda",
    "mode": "smart|pooled|late",
    "ocr": "auto|always|never",
    "ocr_lang": "LANG",
    "token_dtype": "binary|int8|float16",
    "token_pooling": "DISTANCE",
    "qdrant_format": "float16|float32|scalar|binary",
    "collection": "NAME",
    "host": "ADDRESS",
    "port": "PORT",
    "token": "TOKEN",
    "lambda_anchor": "WEIGHT",
    "lambda_late": "WEIGHT",
    "min_score": "SCORE",
    "read_timeout": "SECONDS",
    "settle": "SECONDS",
    "scan_every": "SECONDS",
    "transport": "stdio|http",
    "timeout": "SECONDS",
    "dpi": "DPI",
    "max_pixels": "PIXELS",
}


def _value_type(param: click.Parameter):
    """The Python type of one value of ``param`` (Typer's annotation; click's type on older Typers)."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:
        annotation = descriptor.annotation
        if get_origin(annotation) is list:
            annotation = get_args(annotation)[0]
        return annotation
    kind = getattr(param, "type", None)
    for click_type, python_type in (
        (click.types.BoolParamType, bool),
        (click.types.IntParamType, int),
        (click.types.FloatParamType, float),
        (click.Path, Path),
    ):
        if isinstance(kind, click_type):
            return python_type
    return str


def placeholder(param: click.Parameter) -> str:
    """What ``--help`` shows after ``param``: "" for a flag."""
    value = _value_type(param)
    if getattr(param, "is_flag", False) or value is bool:
        return ""
    if param.name in NAMED:
        return NAMED[param.name]
    if isinstance(value, type) and issubclass(value, int):
        return "N"
    if isinstance(value, type) and issubclass(value, float):
        return "NUMBER"
    if isinstance(value, type) and issubclass(value, PurePath):
        return "PATH"
    return "TEXT"


def name_placeholders(params) -> None:
    for param in params:
        if param.metavar is not None:
            continue  # one the command chose (URL|PATH, PATH[:PAGE])
        param.metavar = placeholder(param)
        if isinstance(param, TyperArgument):
            # An argument shows its metavar as its name; no type column after it.
            param.display_type_rich = lambda ctx: None


def _with_placeholders(get_params):
    """``get_params`` whose parameters, --help and --install-completion included (added late), have placeholders."""

    def get_params_named(ctx):
        params = get_params(ctx)
        name_placeholders(params)
        return params

    return get_params_named


class ReadableHelp(TyperGroup):
    """The ``smart`` group: it and its commands show readable placeholders in their help."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for command in self.commands.values():
            command.get_params = _with_placeholders(command.get_params)

    def get_params(self, ctx):
        params = super().get_params(ctx)
        name_placeholders(params)
        return params
