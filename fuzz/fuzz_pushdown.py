"""atheris harness: see fuzz/targets.py (check_pushdown) for the property and fuzz/README.md for usage."""

from _harness import run

if __name__ == "__main__":
    run("check_pushdown")
