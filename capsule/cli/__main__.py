"""``python -m capsule.cli``: the ``capsule`` command."""

from capsule.cli import main

main()
