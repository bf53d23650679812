"""`python -m minica`: the same as the `minica` command."""

from .cli import main

main()
