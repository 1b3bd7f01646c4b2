"""The ``capsule`` command line: the group and its commands, one module each.

    capsule run      emulator.cli_run      capsule debug    emulator.cli_debug
    capsule test     emulator.cli_test     capsule cspace   emulator.cli_cspace
    capsule image    emulator.cli_image     capsule cc       emulator.cli_cc
    capsule component  emulator.cli_component

Every failure a user can cause (a bad image, a bad argument, a usage error) ends with
one line on stderr, ``capsule: <what is wrong>``, and status 2; never a traceback nor a
usage block (``emulator.cli_errors``). Exit statuses: ``emulator.exitstatus``.
"""

from __future__ import annotations

import click

from .cli_cc import cc
from .cli_component import component
from .cli_cspace import cspace
from .cli_debug import debug
from .cli_errors import Group
from .cli_image import image
from .cli_run import run
from .cli_test import test_command

__all__ = ["main"]


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="capsule")
def main() -> None:
    """capsule: seL4's user ABI on a Python kernel, running RV64 and AArch64 guests."""


main.add_command(run)
main.add_command(image)
main.add_command(test_command)
main.add_command(cspace)
main.add_command(debug)
main.add_command(cc)
main.add_command(component)

if __name__ == "__main__":
    main()
