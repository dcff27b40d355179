"""The `lore` command line: a thin layer over the library. Each command group lives in its
own module and is registered here."""

from __future__ import annotations

import logging
import sys

import click
from pydantic import ValidationError

from bot.cli.acl_commands import acl
from bot.cli.ask_commands import ask, chat, evaluate
from bot.cli.customize_commands import customize
from bot.cli.feedback_commands import feedback
from bot.cli.knowledge_commands import index, search
from bot.cli.manifests_commands import manifests
from bot.cli.serve_command import serve
from bot.cli.sources_commands import sources
from bot.cli.worker_command import worker
from bot.settings import LoreSettings
from knowledge.errors import LoreError


class LoreGroup(click.Group):
    """Renders a `LoreError` as one clear line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except LoreError as error:
            click.echo(f"Error: {error}", err=True)
            sys.exit(1)


@click.group(cls=LoreGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Lore: answers employees' questions from the company's own documents."""
    # Lore's own loggers speak at INFO (one line per refresh, per answer); libraries only warn.
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for own in ("bot", "knowledge"):
        logging.getLogger(own).setLevel(logging.DEBUG if verbose else logging.INFO)
    if not verbose:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    try:
        ctx.obj = LoreSettings()
    except ValidationError as error:
        # Settings come from lore.toml and the environment: say which one is wrong, no traceback.
        problems = "\n".join(
            f"  {'.'.join(str(part) for part in problem['loc'])}: {problem['msg'].removeprefix('Value error, ')}"
            for problem in error.errors()
        )
        click.echo(f"Error: the settings are not valid (lore.toml or the environment):\n{problems}", err=True)
        sys.exit(1)


for command in (manifests, index, search, ask, chat, evaluate, sources, acl, serve, worker, feedback, customize):
    cli.add_command(command)
