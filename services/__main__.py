"""``python -m services`` is the ``tonewatch`` command."""

from services.cli import main

main()
