"""Command line: parse options, call one function, render its result, map errors to exit codes."""

from __future__ import annotations

import click

from pinrepro import __version__


@click.group()
@click.version_option(__version__, prog_name="pinrepro")
def cli() -> None:
    """Pin base images by digest, lock layered Python requirements, record what is inside each image."""


def main() -> None:
    cli()
