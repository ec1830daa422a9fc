"""The batched log handler: every line, in order, warnings written before the call returns,
everything written by a normal exit, in a forked child too (a pure piece: no engine)."""

import io
import logging
import subprocess
import sys
import textwrap
import threading

from analytics_site.log_writer import BatchedStreamHandler


def _logger(name, stream):
    logger = logging.getLogger(f"test.log_writer.{name}")
    logger.handlers[:] = []
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = BatchedStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    return logger, handler


def test_lines_from_many_threads_are_all_written_each_whole_and_in_each_threads_order():
    stream = io.StringIO()
    logger, handler = _logger("threads", stream)

    def log(t):
        for i in range(300):
            logger.info("t%d line %d", t, i)

    threads = [threading.Thread(target=log, args=(t,)) for t in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handler.flush()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 16 * 300
    for t in range(16):
        assert [line for line in lines if line.startswith(f"INFO t{t} ")] == \
            [f"INFO t{t} line {i}" for i in range(300)]


def test_a_warning_is_written_with_everything_before_it_when_the_call_returns():
    stream = io.StringIO()
    logger, _ = _logger("warning", stream)
    for i in range(1000):
        logger.info("before %d", i)
    logger.warning("the warning")
    lines = stream.getvalue().splitlines()  # no flush: the warning waited for its write
    assert lines == [f"INFO before {i}" for i in range(1000)] + ["WARNING the warning"]


def test_a_line_that_cannot_be_formatted_is_reported_and_the_next_ones_still_written(capsys):
    stream = io.StringIO()
    logger, handler = _logger("broken", stream)
    logger.info("%d", "not a number")
    logger.info("after")
    handler.flush()
    assert stream.getvalue() == "INFO after\n"
    assert "not a number" in capsys.readouterr().err  # logging's own report of a bad record


def _run(code):
    program = textwrap.dedent("""
        import logging, os, sys
        from analytics_site.log_writer import BatchedStreamHandler
        handler = BatchedStreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(process)d %(message)s"))
        logging.basicConfig(level=logging.INFO, handlers=[handler])
        log = logging.getLogger("p")
    """) + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)


def test_every_line_is_written_by_a_normal_exit():
    done = _run("""
        for i in range(5000):
            log.info("line %d", i)
        sys.exit(3)
    """)
    assert done.returncode == 3
    assert [line.split(" ", 1)[1] for line in done.stderr.splitlines()] == [f"line {i}" for i in range(5000)]


def test_a_forked_child_writes_its_own_lines_and_not_the_parents_again():
    done = _run("""
        log.info("parent before")
        pid = os.fork()
        if pid == 0:
            for i in range(100):
                log.info("child %d", i)
            sys.exit(0)
        os.waitpid(pid, 0)
        log.info("parent after")
    """)
    assert done.returncode == 0, done.stderr
    messages = [line.split(" ", 1)[1] for line in done.stderr.splitlines()]
    assert messages.count("parent before") == 1 and messages[-1] == "parent after"
    assert [m for m in messages if m.startswith("child")] == [f"child {i}" for i in range(100)]


def test_lines_logged_together_reach_the_stream_in_fewer_writes():
    class CountingStream(io.StringIO):
        writes = 0

        def write(self, text):
            self.writes += 1
            return super().write(text)

    stream = CountingStream()
    logger, handler = _logger("batches", stream)
    for i in range(2000):
        logger.info("line %d", i)
    handler.flush()
    assert stream.getvalue().count("\n") == 2000
    assert stream.writes < 2000  # the writer thread took several lines at a time


def test_a_child_forked_while_the_writers_list_was_locked_can_still_make_a_handler():
    done = _run("""
        import io, threading
        from analytics_site import log_writer
        held, release = threading.Event(), threading.Event()

        def hold():  # another thread making a handler when the fork comes
            with log_writer._writers_lock:
                held.set()
                release.wait()

        threading.Thread(target=hold, daemon=True).start()
        held.wait()
        pid = os.fork()
        release.set()
        if pid == 0:
            BatchedStreamHandler(io.StringIO())  # would wait forever on the copied, held lock
            log.info("child made a handler")
            sys.exit(0)
        os.waitpid(pid, 0)
    """)
    assert done.returncode == 0, done.stderr
    assert [line.split(" ", 1)[1] for line in done.stderr.splitlines()] == ["child made a handler"]
