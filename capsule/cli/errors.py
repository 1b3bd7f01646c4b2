"""One-line errors for every ``capsule`` command (DESIGN.md decision 5).

Every failure a user can cause — a usage error (unknown option or command, a bad option
value, a missing argument), a bad image, an unwritable file — prints exactly one line,
``capsule: <message>``, on stderr and exits with status 2; a bug in capsule is one line
with status 125 (``emulator.exitstatus``). Never a traceback, never click's usage block.

The errors are ``click.ClickException``s whose ``show`` prints that line, so they hold
whichever click group runs the command (click's standalone mode calls ``show`` and exits
with ``exit_code``). :class:`Command` and :class:`Group` turn click's own usage errors
into them, and a :class:`Group` turns a Ctrl-C that no command handled into one line and
status 130 (click would print ``Aborted!`` and exit 1).
"""

from __future__ import annotations

from typing import IO, Any

import click

from emulator.exitstatus import ExitStatus

__all__ = ["CliError", "Command", "Group", "InternalError", "Interrupted"]

# click >= 8.2 raises this (a UsageError) for a bare group: let it show the help text.
_NO_ARGS_IS_HELP: type[Exception] | tuple[()] = getattr(
    click.exceptions, "NoArgsIsHelpError", ()
)


class CliError(click.ClickException):
    """A failure reported as one ``capsule: <message>`` line, exit status 2."""

    exit_code = int(ExitStatus.USAGE)

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.splitlines()))

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"capsule: {self.format_message()}", err=True)


class InternalError(CliError):
    """A bug in capsule, reported as one line (exit status 125)."""

    exit_code = int(ExitStatus.INTERNAL)


class Interrupted(CliError):
    """SIGINT (Ctrl-C) outside any run that handles it itself (exit status 130), instead
    of click's ``Aborted!`` and status 1."""

    exit_code = int(ExitStatus.INTERRUPTED)

    def __init__(self) -> None:
        super().__init__("interrupted (SIGINT)")


class Command(click.Command):
    """A command whose usage errors are one line (click's show a usage block)."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as err:
            raise CliError(err.format_message()) from None


class Group(click.Group):
    """A group whose unknown-subcommand and option errors are one line too; its
    commands are :class:`Command`s unless they say otherwise."""

    command_class = Command

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except _NO_ARGS_IS_HELP:
            raise  # a bare group: the help text, as click shows it
        except click.UsageError as err:
            raise CliError(err.format_message()) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted() from None

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as err:
            raise CliError(err.format_message()) from None
