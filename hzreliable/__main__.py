"""Command line: ``hzreliable demo`` (also ``python -m hzreliable``)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from redis import Redis
from redis.exceptions import RedisError

from ._client import resolve_url


def _connect_or_embed(url: str | None, embedded: bool) -> Redis:
    """The server at ``url`` (or REDIS_URL), else an embedded fakeredis."""
    chosen = resolve_url(url)
    if not embedded:
        client = Redis.from_url(chosen, socket_connect_timeout=1)
        try:
            client.ping()
            print(f"Using Redis at {chosen}")
            return client
        except RedisError:
            client.close()
            if url or os.environ.get("REDIS_URL"):
                raise
    try:
        import fakeredis
    except ImportError:
        raise SystemExit(
            f"hzreliable: no Redis at {chosen} and fakeredis is not installed "
            "(pip install 'hzreliable[dev]')"
        ) from None
    print("Using an embedded fakeredis (no Redis server needed)")
    fake: Redis = fakeredis.FakeRedis()
    return fake


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hzreliable", description=__doc__)
    parser.add_argument("--url", help="Redis URL (default: $REDIS_URL or localhost)")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="a guided tour on Redis, or on an embedded fakeredis"
    )
    demo.add_argument(
        "--embedded", action="store_true", help="use fakeredis even if Redis is up"
    )
    args = parser.parse_args(argv)

    from ._demo import run_demo

    try:
        run_demo(_connect_or_embed(args.url, args.embedded))
    except RedisError as error:
        print(f"hzreliable: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
