"""The `neatlogs` command: `neatlogs serve` (the collector) and `neatlogs demo`."""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

KEYS_ENV = "NEATLOGS_SERVER_API_KEYS"

_NO_KEYS = f"""\
neatlogs serve: no API key configured, so anyone who can reach the port could write and read records.
Either give the keys clients must send (as 'Authorization: Bearer <key>'):
    neatlogs serve --api-key KEY [--api-key KEY2 ...]
    or: export {KEYS_ENV}=KEY1,KEY2
or, on a trusted machine, turn authentication off explicitly:
    neatlogs serve --no-auth"""

_NO_SERVER_DEPS = """\
neatlogs serve needs the collector's dependencies (starlette, uvicorn, jinja2), which are not installed:
    pip install 'neatlogs[server]'"""


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port number (0-65535)")
    return port


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neatlogs", description="NeatLogs: observability for LLM calls.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    serve = commands.add_parser(
        "serve", help="run the collector (ingest endpoint + SQLite store + query API)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    serve.add_argument(
        "--port", type=_port, default=7077, help="port; 0 picks a free one (default: %(default)s)"
    )
    serve.add_argument("--db", default="./neatlogs.db", help="SQLite file (default: %(default)s)")
    serve.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help=f"a key clients must send; repeatable; also read from ${KEYS_ENV} (comma-separated)",
    )
    serve.add_argument(
        "--no-auth",
        action="store_true",
        help="accept requests without a key (only from this machine unless --allow-unauthenticated-network)",
    )
    serve.add_argument(
        "--allow-unauthenticated-network",
        action="store_true",
        help="with --no-auth: allow listening on a non-loopback address (anyone who can reach it can read)",
    )

    demo = commands.add_parser("demo", help="run a few traced calls against a local collector and show them")
    demo.add_argument("--calls", type=int, default=6, help="how many calls to make (default: %(default)s)")
    demo.add_argument(
        "--db", default=None, help="SQLite file for the demo's collector (default: a temp file)"
    )
    demo.add_argument(
        "--no-serve",
        action="store_true",
        help="exit when the calls are done instead of serving the viewer until Ctrl-C"
        " (the default when not run in a terminal)",
    )
    return parser


def _keys(cli_keys: Sequence[str]) -> set[str]:
    from_env = os.environ.get(KEYS_ENV, "").split(",")
    return {key.strip() for key in [*cli_keys, *from_env] if key.strip()}


def _announce(url: str, address: str, db: str, auth: bool) -> None:
    from neatlogs.collector.guard import is_loopback_name

    host = address.rpartition(":")[0]
    local = is_loopback_name(host)
    if local:
        reach = "this machine only"
    elif host.strip("[]") in ("0.0.0.0", "::"):
        reach = "every network interface"
    else:
        reach = "reachable from the network"
    print(f"neatlogs collector listening on {address} ({reach}), storing records in {db}")
    elsewhere = "" if local else " (on this machine; elsewhere use its address)"
    print(f"In the application to trace{elsewhere}:")
    print(f"    export NEATLOGS_ENDPOINT={url}")
    if auth:
        print("    export NEATLOGS_API_KEY=<one of the keys given with --api-key or $" + KEYS_ENV + ">")
    elif local:
        print("Authentication is off (--no-auth): any program on this machine can read and write records.")
    else:
        print(
            "WARNING: authentication is off (--no-auth --allow-unauthenticated-network): anyone who can "
            f"reach {address} can read and write records."
        )
    print(f"The viewer: open {url} in a browser" + (" (it asks for one of the keys once)." if auth else "."))
    print("Press Ctrl-C to stop.", flush=True)


def _serve(args: argparse.Namespace) -> int:
    try:
        from neatlogs.collector.server import serve, unauthenticated_network_problem
        from neatlogs.collector.store import StorageError
    except ImportError:
        print(_NO_SERVER_DEPS, file=sys.stderr)
        return 2
    keys = _keys(args.api_key)
    problem = _auth_problem(args, keys, unauthenticated_network_problem)
    if problem is not None:
        print(f"neatlogs serve: {problem}", file=sys.stderr)
        return 2
    api_keys = None if args.no_auth else keys
    db = str(Path(args.db).resolve())
    announce = functools.partial(_announce, db=db, auth=api_keys is not None)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM and then re-raises the signal; turning that
    # into an exception lets the store close and the command exit 0 instead of dying by signal.
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        serve(
            args.host,
            args.port,
            db,
            api_keys,
            on_listening=announce,
            allow_unauthenticated_network=args.allow_unauthenticated_network,
        )
    except StorageError as exc:
        print(f"neatlogs serve: {exc}. Check the file's permissions and free disk space.", file=sys.stderr)
        return 1
    except (OSError, sqlite3.Error) as exc:
        print(f"neatlogs serve: could not start on {args.host}:{args.port} with {db}: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, _Terminated):
        pass
    except BaseException:
        # A SIGTERM that lands while uvicorn starts (before its own handlers) can surface as its
        # startup failure (SystemExit) or another error; the operator asked to stop, so it is a stop.
        if not _terminated.is_set():
            raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _auth_problem(
    args: argparse.Namespace, keys: set[str], network_problem: Callable[[str], str | None]
) -> str | None:
    """Why the authentication flags cannot be used together (a message), or None."""
    if not args.no_auth:
        if args.allow_unauthenticated_network:
            return "--allow-unauthenticated-network only applies with --no-auth; drop it"
        return None if keys else _NO_KEYS.removeprefix("neatlogs serve: ")
    if keys:
        if args.api_key:
            given, remove = "--api-key", "drop --api-key"
        else:
            given, remove = f"${KEYS_ENV}", f"unset {KEYS_ENV}"
        return (
            f"--no-auth contradicts the API keys given ({given}): either require a key (drop --no-auth) "
            f"or turn authentication off ({remove})"
        )
    return None if args.allow_unauthenticated_network else network_problem(args.host)


class _Terminated(Exception):
    """SIGTERM arrived."""


_terminated = threading.Event()


def _terminate(signum: int, frame: FrameType | None) -> None:
    _terminated.set()
    raise _Terminated


def _demo(args: argparse.Namespace) -> int:
    from neatlogs._demo import run_demo

    return int(run_demo(args))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `neatlogs` command line; returns the process exit code."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return _demo(args)


if __name__ == "__main__":
    sys.exit(main())
