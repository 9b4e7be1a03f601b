"""
The ``hzreliable`` command: publish to a topic, tail it, describe it, or
take the guided tour.

Exit codes: 0 ok, 1 operational error (overload, a listener that ended, a
missing topic, Redis failing mid-command), 2 usage or user error (bad
arguments, a bad topic name or URL, an unreachable server), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, NoReturn, TextIO
from urllib.parse import urlsplit, urlunsplit

from pydantic import ValidationError
from redis import Redis
from redis.exceptions import RedisError

from ._client import ReliableTopicClient, resolve_url
from ._codec import JsonCodec
from ._config import ReliableTopicConfig, TopicOverloadPolicy
from ._errors import HzReliableError, MessageDecodeError
from ._listener import FROM_LATEST, FROM_OLDEST, ReliableMessageListener, TopicMessage
from ._protocol import TopicKeys, check_topic_name

logger = logging.getLogger(__name__)

OK = 0
FAILED = 1
USAGE = 2
INTERRUPTED = 130

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a TCP connection before calling the server unreachable."""

SOCKET_TIMEOUT = 30.0
"""Seconds to wait for a reply; far above the listeners' blocking reads."""

CREATION_POLL = 0.25
"""Seconds between checks while ``tail`` waits for its topic to be created."""

WAKE_INTERVAL = 0.5
"""Longest uninterrupted wait of the main thread, so Ctrl-C is seen promptly."""


class CliError(Exception):
    """Ends the command with a one-line message on stderr and an exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # Usage errors get the same one-line shape as every other error.
        self.exit(USAGE, f"hzreliable: {message} (see '{self.prog} --help')\n")


# ------------------------------------------------------------------ parsing


def _topic_name(text: str) -> str:
    try:
        return check_topic_name(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _start_position(text: str) -> int:
    word = text.strip().lower()
    if word == "oldest":
        return FROM_OLDEST
    if word == "latest":
        return FROM_LATEST
    try:
        value = int(word)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"expected oldest, latest or a sequence >= 0, not {text!r}"
        )
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, not {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, not {text!r}")
    return value


_TOPIC_HELP = "the topic's name (A-Z a-z 0-9 _ . : / @ + = -)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hzreliable",
        description="Publish to, follow and inspect hzreliable topics on Redis.",
        epilog="Exit codes: 0 ok, 1 operational error, 2 usage error or "
        "unreachable server, 130 interrupted.",
    )
    url_help = "Redis URL (default: $REDIS_URL, else redis://localhost:6379/0)"
    json_help = "print one JSON object per line, for scripts"
    parser.add_argument("--url", help=url_help)
    parser.add_argument("--json", action="store_true", help=json_help)
    parser.add_argument("--version", action="version", version=_version())
    # The options may also follow the command; SUPPRESS keeps a value given
    # before the command from being reset by the subcommand's default.
    with_url = _Parser(add_help=False)
    with_url.add_argument("--url", default=argparse.SUPPRESS, help=url_help)
    with_json = _Parser(add_help=False)
    with_json.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help=json_help
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    publish = commands.add_parser(
        "publish",
        parents=[with_url, with_json],
        help="publish a message, or one per line of stdin",
        description="Publish MESSAGE (JSON if it parses, else text) and print "
        "its sequence; with MESSAGE '-' or omitted, publish each non-empty "
        "line of stdin. Creates the topic if needed.",
    )
    publish.add_argument("topic", type=_topic_name, metavar="TOPIC", help=_TOPIC_HELP)
    publish.add_argument(
        "message",
        nargs="?",
        default="-",
        metavar="MESSAGE",
        help="the message; '-' (the default) reads one message per stdin line",
    )
    publish.add_argument(
        "--batch",
        action="store_true",
        help="publish all of stdin as one atomic batch with contiguous sequences",
    )
    publish.add_argument(
        "--policy",
        type=str.upper,
        choices=[policy.value for policy in TopicOverloadPolicy],
        help="what to do when the ring is full (default BLOCK)",
    )
    publish.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="under BLOCK, give up after this many seconds of a full ring",
    )
    publish.add_argument(
        "--capacity",
        type=int,
        metavar="N",
        help="ring capacity for a new topic; must match an existing one",
    )
    publish.add_argument(
        "--time-to-live",
        type=float,
        dest="time_to_live",
        metavar="SECONDS",
        help="retention period for a new topic; must match an existing one",
    )

    tail = commands.add_parser(
        "tail",
        parents=[with_url, with_json],
        help="print a topic's messages as they arrive",
        description="Follow TOPIC like 'tail -f': one line per message. "
        "Waits for the topic if it does not exist yet.",
    )
    tail.add_argument("topic", type=_topic_name, metavar="TOPIC", help=_TOPIC_HELP)
    tail.add_argument(
        "--from",
        dest="start",
        type=_start_position,
        default=FROM_LATEST,
        metavar="oldest|latest|SEQUENCE",
        help="where to start (default: latest, only new messages)",
    )
    tail.add_argument(
        "--count", type=_positive_int, metavar="N", help="exit after N messages"
    )
    tail.add_argument(
        "--strict",
        action="store_true",
        help="end with an error when messages are lost, instead of skipping them",
    )

    info = commands.add_parser(
        "info",
        parents=[with_url, with_json],
        help="describe a topic's ring",
        description="Print TOPIC's ring settings and position; never creates "
        "the topic.",
    )
    info.add_argument("topic", type=_topic_name, metavar="TOPIC", help=_TOPIC_HELP)

    demo = commands.add_parser(
        "demo",
        parents=[with_url, with_json],
        help="a guided tour on Redis, or on an embedded fakeredis",
        description="Publish, replay, resume and overload a few demo topics, "
        "narrated; with --json, print one summary object instead. Uses the "
        "Redis at --url (which must answer), else $REDIS_URL or localhost if "
        "one answers, else an embedded fakeredis. Deletes its topics after.",
    )
    demo.add_argument(
        "--embedded", action="store_true", help="use fakeredis even if Redis is up"
    )
    return parser


def _version() -> str:
    from . import __version__

    return f"hzreliable {__version__}"


# --------------------------------------------------------------- messages


_JSON_CODEC = JsonCodec()


def parse_message(text: str) -> Any:
    """JSON if ``text`` parses as JSON the codec can publish, else the text."""
    try:
        value = json.loads(text)
        # Some JSON text parses to what the codec refuses: NaN, and numbers
        # too large for a float (1e400 is infinity). Asking the codec itself
        # keeps "JSON if it parses, else text" true whatever it refuses.
        _JSON_CODEC.encode(value)
    except (ValueError, TypeError, RecursionError):
        return text
    return value


def _as_json_value(value: object) -> Any:
    # The default codec hands bytes back as bytes; show them as text.
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "backslashreplace")
    return repr(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=_as_json_value)


def _iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    return moment.isoformat(timespec="milliseconds")


class _Output:
    """Writes results to stdout, for people or (``--json``) for scripts."""

    def __init__(self, as_json: bool, stream: TextIO) -> None:
        self.as_json = as_json
        self.stream = stream

    def emit(self, record: dict[str, Any], text: str) -> None:
        self.stream.write((_dumps(record) if self.as_json else text) + "\n")
        # Flushed per line: readers of a pipe must see each result at once.
        self.stream.flush()


def _note(text: str) -> None:
    print(f"hzreliable: {text}", file=sys.stderr, flush=True)


# ------------------------------------------------------------ connecting


def _redact(url: str) -> str:
    """The URL without its password, fit for an error message."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _connect(url: str | None) -> Redis:
    chosen = resolve_url(url)
    shown = _redact(chosen)
    try:
        redis = Redis.from_url(
            chosen,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=SOCKET_TIMEOUT,
        )
    except ValueError as error:
        raise CliError(f"bad Redis URL {shown}: {error}", USAGE) from None
    try:
        redis.ping()
    except RedisError as error:
        redis.close()
        raise CliError(f"cannot reach Redis at {shown}: {error}", USAGE) from None
    logger.debug("connected to %s", shown)
    return redis


@contextmanager
def _opened(url: str | None) -> Iterator[ReliableTopicClient]:
    redis = _connect(url)
    client = ReliableTopicClient(redis)
    try:
        yield client
    finally:
        client.shutdown()
        redis.close()


def _exists(client: ReliableTopicClient, topic: str) -> bool:
    # Opening a topic creates it, so existence is asked of its metadata key.
    return bool(client.redis.exists(TopicKeys.of(topic).meta))


# -------------------------------------------------------------- publish


def _publish_config(args: argparse.Namespace) -> ReliableTopicConfig | None:
    # Only options given are set, so an existing topic's ring is adopted.
    fields = {
        name: getattr(args, name)
        for name in ("capacity", "time_to_live")
        if getattr(args, name) is not None
    }
    if args.policy is not None:
        fields["overload_policy"] = args.policy
    return ReliableTopicConfig(**fields) if fields else None


def _stdin_messages() -> Iterator[Any]:
    stdin = sys.stdin
    if stdin is None:
        raise CliError("no MESSAGE given and there is no stdin to read", USAGE)
    if stdin.isatty():
        _note("reading one message per line; end with Ctrl-D")
    for line in stdin:
        text = line.rstrip("\r\n")
        if text:
            yield parse_message(text)


def _report_publish(out: _Output, sequences: list[int]) -> None:
    text = "\n".join(map(str, sequences)) if sequences else "discarded"
    out.emit({"sequences": sequences}, text)


def run_publish(args: argparse.Namespace, out: _Output) -> int:
    config = _publish_config(args)
    messages: Iterable[Any]
    if args.message == "-":
        messages = _stdin_messages()
    else:
        messages = [parse_message(args.message)]
    with _opened(args.url) as client:
        topic = client.get_reliable_topic(args.topic, config)
        if args.batch:
            batch = list(messages)
            if batch:
                _report_publish(out, topic.publish_all(batch, args.timeout))
            return OK
        for message in messages:
            sequence = topic.publish(message, args.timeout)
            _report_publish(out, [] if sequence is None else [sequence])
    return OK


# ----------------------------------------------------------------- tail


class _TailListener(ReliableMessageListener[Any]):
    """Prints each message; stops counting at ``count``."""

    def __init__(
        self, start: int, strict: bool, count: int | None, out: _Output
    ) -> None:
        self.start = start
        self.strict = strict
        self.count = count
        self.out = out
        self.printed = 0
        self.first: int | None = None
        self.ready = threading.Event()
        self.finished = threading.Event()

    def retrieve_initial_sequence(self) -> int:
        return self.start

    def is_loss_tolerant(self) -> bool:
        return not self.strict

    def store_sequence(self, sequence: int) -> None:
        if self.first is None:
            self.first = sequence
        # Held until the readiness line is out, so it precedes every message.
        self.ready.wait()

    def on_message(self, message: TopicMessage[Any]) -> None:
        if self.finished.is_set():
            return  # the rest of a batch read after the count was reached
        record = {
            "sequence": message.sequence,
            "publish_time": message.publish_time,
            "message": message.message,
        }
        text = f"{message.sequence}  {_iso(message.publish_time)}  "
        self.out.emit(record, text + _dumps(message.message))
        self.printed += 1
        if self.count is not None and self.printed >= self.count:
            self.finished.set()

    def is_terminal(self, error: BaseException) -> bool:
        # An entry another tool wrote badly is skipped (with a warning) unless
        # strict; anything else, such as a closed stdout, ends the tail.
        if isinstance(error, MessageDecodeError):
            if self.first is None:
                self.first = error.sequence
            return self.strict
        return True

    def on_cancel(self) -> None:
        self.finished.set()


def _wait_for_topic(client: ReliableTopicClient, name: str) -> None:
    _note(f"waiting for topic {name} to be created")
    while not _exists(client, name):
        time.sleep(CREATION_POLL)


def run_tail(args: argparse.Namespace, out: _Output) -> int:
    start: int = args.start
    with _opened(args.url) as client:
        if not _exists(client, args.topic):
            # Opening a missing topic would create it with default ring
            # settings and make its real creator's config conflict; wait.
            _wait_for_topic(client, args.topic)
            if start == FROM_LATEST:
                start = FROM_OLDEST  # all of it was published after we began
        topic = client.get_reliable_topic(args.topic)
        listener = _TailListener(start, args.strict, args.count, out)
        registration = topic.add_listener(listener)
        try:
            stats = topic.get_local_topic_stats().listeners.get(registration)
            if stats is not None:
                first = listener.first
                position = first if first is not None else stats.next_sequence
                _note(f"listening on {args.topic} from {position}")
        finally:
            listener.ready.set()
        while not listener.finished.wait(WAKE_INTERVAL):
            pass
        if args.count is not None and listener.printed >= args.count:
            return OK
        error = topic.listener_error(registration)
    if isinstance(error, BrokenPipeError):
        raise error
    if error is None:
        raise CliError("tail ended unexpectedly", FAILED)
    raise CliError(f"tail ended: {_one_line(error)}", FAILED)


# ----------------------------------------------------------------- info


def run_info(args: argparse.Namespace, out: _Output) -> int:
    with _opened(args.url) as client:
        if not _exists(client, args.topic):
            raise CliError(f"topic {args.topic!r} does not exist", FAILED)
        topic = client.get_reliable_topic(args.topic)
        ring = topic.ringbuffer
        head, tail, size = ring.head_sequence(), ring.tail_sequence(), ring.size()
        capacity, remaining = ring.capacity(), ring.remaining_capacity()
        ttl = topic.config.time_to_live
    full = remaining == 0
    record = {
        "topic": args.topic,
        "capacity": capacity,
        "time_to_live": ttl,
        "head": head,
        "tail": tail,
        "size": size,
        "remaining_capacity": remaining,
        "full": full,
    }
    retention = f"{ttl:g} s" if ttl else "0 (none: the oldest message is overwritten)"
    rows = [
        ("topic", args.topic),
        ("capacity", capacity),
        ("time to live", retention),
        ("head", head),
        ("tail", tail),
        ("size", size),
        ("remaining capacity", remaining),
        ("full", "yes" if full else "no"),
    ]
    out.emit(record, "\n".join(f"{label:<20}{value}" for label, value in rows))
    return OK


# ----------------------------------------------------------------- demo


def _connect_or_embed(
    url: str | None, embedded: bool, say: Callable[[str], None]
) -> tuple[Redis, str | None]:
    """
    The server at ``url``, else at REDIS_URL or localhost, else an embedded
    fakeredis; with the server's URL (None for fakeredis). Only a server
    named with ``--url`` must answer: the tour is meant to run anywhere, and
    a REDIS_URL left in the environment should not stop it.
    """
    chosen = resolve_url(url)
    shown = _redact(chosen)
    if not embedded:
        try:
            client = Redis.from_url(chosen, socket_connect_timeout=1)
        except ValueError as error:
            raise CliError(f"bad Redis URL {shown}: {error}", USAGE) from None
        try:
            client.ping()
        except RedisError as error:
            client.close()
            if url:
                raise CliError(
                    f"cannot reach Redis at {shown}: {_one_line(error)}", USAGE
                ) from None
            say(f"No Redis answered at {shown}.")
        else:
            say(f"Using Redis at {shown}")
            return client, shown
    try:
        import fakeredis
    except ImportError:
        raise CliError(
            f"no Redis at {shown} and fakeredis is not installed "
            "(pip install 'hzreliable[dev]')",
            FAILED,
        ) from None
    say("Using an embedded fakeredis (no Redis server needed)")
    fake: Redis = fakeredis.FakeRedis()
    return fake, None


def _quiet(_: str) -> None:
    pass


def run_demo(args: argparse.Namespace, out: _Output) -> int:
    from ._demo import DemoError
    from ._demo import run_demo as tour

    # With --json the narration is left out: one summary object instead.
    say: Callable[[str], None] = _quiet if out.as_json else print
    redis, server = _connect_or_embed(args.url, args.embedded, say)
    try:
        summary = tour(redis, say)
    except DemoError as error:
        raise CliError(f"demo failed: {error}", FAILED) from None
    finally:
        redis.close()
    if out.as_json:
        out.emit({"redis": server, "embedded": server is None, **summary}, "")
    return OK


# ----------------------------------------------------------------- main


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        shown = logging.makeLogRecord(record.__dict__)
        shown.levelname = record.levelname.lower()
        return super().format(shown)


def _not_the_end_report(record: logging.LogRecord) -> bool:
    # A listener that ends is reported as the command's own error line.
    return not (isinstance(record.msg, str) and "ended at sequence" in record.msg)


def _configure_logging() -> None:
    root = logging.getLogger()
    if root.handlers:
        return  # embedded in a program that set up logging itself
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter("hzreliable: %(levelname)s: %(message)s"))
    handler.addFilter(_not_the_end_report)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


def _one_line(error: BaseException) -> str:
    if isinstance(error, ValidationError):
        problems = []
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"])
            problems.append(f"{where}: {problem['msg']}" if where else problem["msg"])
        return "; ".join(problems)
    return " ".join(str(error).split()) or type(error).__name__


def _fail(message: str, code: int) -> int:
    print(f"hzreliable: {message}", file=sys.stderr, flush=True)
    return code


def _silence_stdout() -> None:
    # The reader went away; stop the interpreter's final flush complaining.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


COMMANDS: dict[str, Callable[[argparse.Namespace, _Output], int]] = {
    "publish": run_publish,
    "tail": run_tail,
    "info": run_info,
    "demo": run_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        _configure_logging()
        return COMMANDS[args.command](args, _Output(args.json, sys.stdout))
    except KeyboardInterrupt:
        return INTERRUPTED
    except CliError as error:
        return _fail(str(error), error.code)
    except BrokenPipeError:
        _silence_stdout()
        return FAILED
    except ValueError as error:
        # Bad names, conflicting ring settings, oversized messages, bad
        # config values: all the user's to fix.
        return _fail(_one_line(error), USAGE)
    except HzReliableError as error:
        return _fail(_one_line(error), FAILED)
    except RedisError as error:
        return _fail(f"Redis failed: {_one_line(error)}", FAILED)
