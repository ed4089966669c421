"""``python -m pipelines.emulator``: run the vendor emulator in the foreground."""

from __future__ import annotations

import argparse
from datetime import date

from .server import DEFAULT_API_KEY, DEFAULT_PORT, DEFAULT_TODAY, serve_forever


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipelines.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--today", type=date.fromisoformat, default=DEFAULT_TODAY, help="YYYY-MM-DD")
    parser.add_argument("--api-key", action="append", dest="api_keys", help="valid key (repeatable)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    serve_forever(
        host=args.host,
        port=args.port,
        today=args.today,
        api_keys=args.api_keys or (DEFAULT_API_KEY,),
        verbose=args.verbose,
    )


if __name__ == "__main__":
    main()
