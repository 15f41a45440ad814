# pairchat — the verbs a newcomer needs. `./run RECIPE` installs uv and just first.
set shell := ["bash", "-euo", "pipefail", "-c"]
export UV_PYTHON_DOWNLOADS := "never"

# list the recipes
default:
    @just --list

# server on the embedded default (./conversations) with demo accounts, plus the TUI as alice
demo *ARGS:
    uv run --frozen python -m tui.demo {{ARGS}}

# run the API server (granian; --open, --dev, --port, --data-dir, --registration …)
serve *ARGS:
    uv run --frozen pairchat-server serve {{ARGS}}

# operator commands: invite, demo-data, backup DEST, export A B, forget A B (see docs/deploy.md)
server *ARGS:
    uv run --frozen pairchat-server {{ARGS}}

# print the line that puts uv, just, pairchat and pairchat-server on your PATH (eval it)
env:
    @echo 'export PATH="{{justfile_directory()}}/.tools/bin:{{justfile_directory()}}/.venv/bin:$PATH"'

# run the terminal client (--server URL, --user NAME)
chat *ARGS:
    uv run --frozen pairchat {{ARGS}}

# lint, format check, type check and the whole test suite (4 test processes; PAIRCHAT_TEST_WORKERS=0: one)
test *ARGS: lint
    uv run --frozen pytest -n "${PAIRCHAT_TEST_WORKERS:-4}" {{ARGS}}

# the fast loop: the in-process tier and the unit tests, no live servers
test-fast *ARGS:
    uv run --frozen pytest -n "${PAIRCHAT_TEST_WORKERS:-4}" -m "not live" {{ARGS}}

# ruff check, ruff format --check, mypy and the import contracts (layers, see pyproject.toml)
lint:
    uv run --frozen ruff check .
    uv run --frozen ruff format --check .
    uv run --frozen mypy
    uv run --frozen lint-imports

# format the code in place
fmt:
    uv run --frozen ruff format .
    uv run --frozen ruff check --fix .

# regenerate docs/openapi.yaml from the wire schema (protocol/); a test fails until it is
openapi:
    uv run --frozen python -m protocol.openapi > docs/openapi.yaml

# benchmarks: print the tables (ratios against a baseline measured in the same run)
bench *ARGS:
    uv run --frozen python -m bench {{ARGS}}

# long crash-recovery and fuzz runs (CI runs short versions inside `test`)
soak *ARGS:
    PAIRCHAT_SOAK=1 uv run --frozen pytest -m slow {{ARGS}}
