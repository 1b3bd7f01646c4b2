"""The ``capsule`` command line: the group and its commands, one module each.

    capsule run      capsule.cli.run       capsule debug    capsule.cli.debug
    capsule test     capsule.cli.suite     capsule cspace   capsule.cli.cspace
    capsule image    capsule.cli.image     capsule cc       capsule.cli.cc
    capsule resume   capsule.cli.resume    capsule component  capsule.cli.component
    capsule snapshot capsule.cli.snapshot

The commands are users of the Python API (:mod:`capsule`): they load, run and inspect
through :class:`capsule.Machine`, and reach below it (the session, the kernel) only for
what a command adds on top (the trace and kernel-log sinks, the GDB stub). Nothing in
``capsule`` outside this package imports it (an import-linter contract).

Every failure a user can cause (a bad image, a bad argument, a usage error) ends with
one line on stderr, ``capsule: <what is wrong>``, and status 2; never a traceback nor a
usage block (``capsule.cli.errors``). Exit statuses: ``emulator.exitstatus``.
"""

from __future__ import annotations

import importlib

import click

from .errors import Group

__all__ = ["main"]


_COMMANDS: dict[str, tuple[str, str]] = {
    "run": (".run", "run"),
    "resume": (".resume", "resume"),
    "snapshot": (".snapshot", "snapshot"),
    "image": (".image", "image"),
    "test": (".suite", "test_command"),
    "cspace": (".cspace", "cspace"),
    "debug": (".debug", "debug"),
    "cc": (".cc", "cc"),
    "component": (".component", "component"),
}
"""Command name -> (module, attribute) of its click command. Each module is imported when
its command is first looked up (to run it, or to list it in --help), so that `capsule
run` does not load the debugger and capstone, the compiler driver, the test runner or
the component tools."""


def _load(name: str) -> click.Command:
    module, attribute = _COMMANDS[name]
    command: click.Command = getattr(importlib.import_module(module, __package__), attribute)
    return command


class _LazyGroup(Group):
    """The ``capsule`` group, whose commands are imported from :data:`_COMMANDS` when
    first looked up; to click it looks like a group with all of them added."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _COMMANDS and cmd_name not in self.commands:
            self.add_command(_load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.commands.keys() | _COMMANDS.keys())

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in _COMMANDS:
            # An unknown name: click's "did you mean" draws on the commands it has.
            for name in _COMMANDS:
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="capsule")
def main() -> None:
    """capsule: seL4's user ABI on a Python kernel, running RV64 and AArch64 guests."""

