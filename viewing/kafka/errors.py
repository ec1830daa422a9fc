"""The consumer's errors: what stops a loop, and which of them a restart would not cure."""


class ConsumerError(Exception):
    """The loop cannot start or go on; the message says why and what to do.

    `fatal` errors are not retried by the server's consumer thread: trying again would give
    the same answer (or dead-letter the next thousand messages) until an operator acts.
    """

    fatal: bool = False


class ConfigurationError(ConsumerError):
    """The settings cannot work together (a flush could outlast the poll interval)."""

    fatal = True


class PoisonFlood(ConsumerError):
    """Nearly everything read is invalid: a misconfigured producer, not a few bad messages."""

    fatal = True


def describe(error: BaseException) -> str:
    """One line about an error: ClickHouse's own message when there is one (its text starts
    with a bare "Code: NN." line that says little)."""
    text = " ".join(str(error).split()) or type(error).__name__
    if "DB::Exception:" in text:
        text = text[text.index("DB::Exception:") + len("DB::Exception:"):].strip()
    return text[:300]
