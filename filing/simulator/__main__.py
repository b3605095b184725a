"""Runs the platform simulator: ``python -m filing.simulator --help``."""

from filing.simulator.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
