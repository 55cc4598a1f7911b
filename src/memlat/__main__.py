"""`python -m memlat` runs the command line."""

from memlat.cli import main

main()
