"""atheris harness over every property (first byte picks one): the CI smoke run, see fuzz/README.md."""

from _harness import run

if __name__ == "__main__":
    run("check_all")
