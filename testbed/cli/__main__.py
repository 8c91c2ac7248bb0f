"""`python -m testbed.cli`: the same as the `testbed` script."""

from testbed.cli import main

main()
