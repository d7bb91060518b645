"""`python -m ctbench ...` is `bench ...` (used to launch servers with the runner's interpreter)."""
from ctbench.server_cli import main

main()
