"""What a worker accepts from the broker, checked in its main process before Celery builds a request.

Celery decodes a task message in the worker's main process and pickles the
decoded arguments for the pool. A body nesting a few hundred levels deep makes
that pickling raise RecursionError in the main process: the worker dies, and
the unacknowledged message comes back to kill the next one. So every JSON body
is checked while it is decoded (size, then nesting); a refused body becomes
kombu's DecodeError, which the consumer acknowledges without running anything.

Celery's own handlers for messages it cannot decode or route log the body and
the headers (where producers put `argsrepr`, the arguments' repr): with a
ticket, the requester's personal data. IntakeConsumer logs only what
identifies a message, and hides `argsrepr`/`kwargsrepr` from everything the
worker logs or reports afterwards.
"""

import bz2
import logging
import lzma
import re
import zlib
from collections.abc import Callable

from celery.worker.consumer import consumer as celery_consumer
from django.conf import settings
from kombu import compression
from kombu.exceptions import ContentDisallowed
from kombu.serialization import registry
from kombu.utils import json as kombu_json
from vine import promise

logger = logging.getLogger(__name__)

# Celery's protocol 2 body is [args, kwargs, embed]: the body and the argument
# list are two levels of its own around each task argument.
ENVELOPE_DEPTH = 2
HIDDEN_REPR = "(not logged)"
_SHOWABLE = re.compile(r"[\w.:/+-]{1,200}")


class MessageRefused(ValueError):
    """A message body over an intake limit. Its text names the limit, never the content."""


def message_check_size(size: int) -> None:
    """Raise MessageRefused when a body of `size` bytes is over MESSAGE_MAX_BYTES."""
    if size > settings.MESSAGE_MAX_BYTES:
        raise MessageRefused(f"body of {size} bytes is over MESSAGE_MAX_BYTES ({settings.MESSAGE_MAX_BYTES})")


def nesting_exceeds(value: object, limit: int) -> bool:
    """Whether `value` nests lists/dicts more than `limit` levels deep (the value itself is level 1)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list | tuple):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list | tuple))
    return False


def json_loads(data: bytes | bytearray | memoryview | str) -> object:
    """kombu's JSON decoder, refusing bodies over MESSAGE_MAX_BYTES or nesting over MESSAGE_MAX_DEPTH."""
    size = len(data.encode("utf-8", "surrogatepass")) if isinstance(data, str) else len(data)
    message_check_size(size)
    # Deeper than the interpreter's recursion limit, json raises RecursionError
    # itself, which kombu turns into a DecodeError too.
    value = kombu_json.loads(data)
    limit = settings.MESSAGE_MAX_DEPTH
    if nesting_exceeds(value, limit + ENVELOPE_DEPTH):
        raise MessageRefused(f"arguments nest deeper than MESSAGE_MAX_DEPTH ({limit} levels)")
    return value


def _bounded(decompressor: Callable[[], object], name: str) -> Callable[[bytes], bytes]:
    """A decoder for a compressed body that stops past MESSAGE_MAX_BYTES instead of filling memory."""

    def decompress(body: bytes) -> bytes:
        limit = settings.MESSAGE_MAX_BYTES
        data = decompressor().decompress(body, limit + 1)
        message_check_size(len(data) if len(data) <= limit else limit + 1)
        return data

    decompress.__name__ = f"bounded_{name}_decompress"
    return decompress


def register_json_limits() -> None:
    """Make the limits part of decoding `application/json` in this process (worker, pool and producers).

    A compressed body is decompressed before it is decoded: a few kilobytes
    can unpack to gigabytes, so decompression stops past MESSAGE_MAX_BYTES too.
    """
    registry.register(
        "json", kombu_json.dumps, json_loads, content_type="application/json", content_encoding="utf-8"
    )
    compression.register(
        zlib.compress, _bounded(zlib.decompressobj, "zlib"), "application/x-gzip", aliases=["gzip", "zlib"]
    )
    compression.register(
        bz2.compress, _bounded(bz2.BZ2Decompressor, "bz2"), "application/x-bz2", aliases=["bzip2", "bzip"]
    )
    compression.register(
        lzma.compress, _bounded(lzma.LZMADecompressor, "lzma"), "application/x-lzma", aliases=["lzma", "xz"]
    )


def _showable(value: object) -> str:
    """A header value fit for a log line: ids, task names, content types; anything else is not shown."""
    if isinstance(value, str) and _SHOWABLE.fullmatch(value):
        return value
    return "(not shown)"


def _describe(message) -> tuple[str, str, str, int]:
    headers = message.headers if isinstance(message.headers, dict) else {}
    body = message.body
    return (
        _showable(headers.get("id")),
        _showable(headers.get("task")),
        _showable(message.content_type),
        len(body) if isinstance(body, bytes | bytearray | str) else 0,
    )


def _reason(exc: BaseException) -> str:
    # kombu wraps the decoder's exception in DecodeError(exc). Exceptions from
    # json or codecs may quote the body, so only their type is logged.
    cause = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else exc
    if isinstance(cause, MessageRefused):
        return str(cause)
    if isinstance(cause, ContentDisallowed):
        return "content type not accepted"
    return f"cannot be decoded ({type(cause).__name__})"


class _DropBodyDumps(logging.Filter):
    """Drops Celery's log lines quoting a refused message's body and headers; IntakeConsumer logs its own."""

    TEMPLATES = frozenset(
        {
            celery_consumer.MESSAGE_DECODE_ERROR,
            celery_consumer.UNKNOWN_TASK_ERROR,
            celery_consumer.INVALID_TASK_ERROR,
            celery_consumer.UNKNOWN_FORMAT,
        }
    )

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in self.TEMPLATES


celery_consumer.logger.addFilter(_DropBodyDumps())


class IntakeConsumer(celery_consumer.Consumer):
    """Celery's consumer, but refused messages are logged without their content, and argsrepr is never logged.

    Each handler logs one line and leaves the rest (acknowledging or
    rejecting without requeue, signals, result backend) to Celery.
    """

    def create_task_handler(self, promise=promise):
        on_task_received = super().create_task_handler(promise)

        def on_task_received_without_reprs(message) -> None:
            headers = message.headers
            if isinstance(headers, dict):
                # Celery copies these producer-written reprs into the request,
                # which its error messages, events and `inspect` show.
                for key in ("argsrepr", "kwargsrepr"):
                    if key in headers:
                        headers[key] = HIDDEN_REPR
            return on_task_received(message)

        return on_task_received_without_reprs

    def on_decode_error(self, message, exc) -> None:
        message_id, task, content_type, size = _describe(message)
        logger.error(
            "Refused message %s for task %s (%s, %s bytes): %s; acknowledged, not run",
            message_id,
            task,
            content_type,
            size,
            _reason(exc),
        )
        super().on_decode_error(message, exc)

    def on_invalid_task(self, body, message, exc) -> None:
        message_id, task, content_type, size = _describe(message)
        logger.error(
            "Refused message %s for task %s (%s, %s bytes): invalid task message (%s); rejected, not run",
            message_id,
            task,
            content_type,
            size,
            _reason(exc) if isinstance(exc, ContentDisallowed) else type(exc).__name__,
        )
        super().on_invalid_task(body, message, exc)

    def on_unknown_task(self, body, message, exc) -> None:
        message_id, task, content_type, size = _describe(message)
        logger.error(
            "Refused message %s (%s, %s bytes): task %s is not registered here; rejected, not run",
            message_id,
            content_type,
            size,
            task,
        )
        super().on_unknown_task(body, message, exc)

    def on_unknown_message(self, body, message) -> None:
        message_id, _task, content_type, size = _describe(message)
        logger.warning(
            "Refused message %s (%s, %s bytes): not a task message; rejected",
            message_id,
            content_type,
            size,
        )
        super().on_unknown_message(body, message)
