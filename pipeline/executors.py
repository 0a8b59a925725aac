"""Where a run's fan-out work executes: this machine's process pools, or a Dask cluster.

The partitioned work is the same either way; only where the chunks run differs:

- standardize: chunks of the distinct input tuples of each field (`standardize.parallel`),
  submitted to `FanOut.executor()` (a `concurrent.futures.Executor`);
- link: blocking rules, chunks of candidate pairs compared and scored (`link.parallel`), run
  on `FanOut.pool_with(shared)`, whose workers read the column arrays through `shared_value()`
  (a fork pool inherits them; a Dask cluster gets them once, as the result of a task that
  returns them, which the scheduler recomputes if the worker holding it dies);
- survivorship: groups of whole clusters (`survivorship.golden_in_groups`): `FanOut.map` on a
  Dask cluster; on this machine, opt-in (`in_process_below` in rules/survivorship.yaml),
  `fork_map`: children forked from the run that inherit the records and send back their result
  as a file (`--workers` groups from that many records on; else one process builds them all).

`run_pipeline` opens the fan-out the options ask for (`open_fanout`) and makes it current for
the stages (`using`); code that fans out asks `current()`. A Dask fan-out is reused when one is
already current (the Prefect flow installs the one of its `DaskTaskRunner`).
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import shutil
import signal
import tempfile
import threading
import traceback
import warnings
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Iterator, Protocol

from . import memory
from .errors import CrmcleanError

# ------------------------------------------------------------------- the shared value of a task

_SHARED: Any = None  # a fork worker's shared value, set once at its start
_TASK = threading.local()  # a Dask task's shared value (Dask workers run tasks in threads)


def shared_value() -> Any:
    """The value the current pool task shares with its siblings (the link columns)."""
    value = getattr(_TASK, "value", None)
    return value if value is not None else _SHARED


def _set_shared(value: Any) -> None:
    global _SHARED
    _SHARED = value


def _with_shared(value: Any, fn: Callable[..., Any], *args: Any) -> Any:
    """Dask side: run `fn` with `value` (resolved from the pool's future) as the shared value."""
    _TASK.value = value
    try:
        return fn(*args)
    finally:
        _TASK.value = None


# ------------------------------------------------------------------- the interface


class TaskPool(Protocol):
    """Runs `fn(*args)` where `shared_value()` is the pool's shared value."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any: ...  # → a future with .result()

    def shutdown(self) -> None: ...


class FanOut(Protocol):
    """Where chunks run. Local processes and a Dask cluster implement it."""

    name: str

    def executor(self, workers: int) -> Executor | None: ...

    def usable(self, workers: int) -> bool: ...

    def pool_with(self, shared: Any, workers: int) -> TaskPool: ...

    def groups(self, items: int) -> int: ...

    def map(self, fn: Callable[..., Any], parts: list[tuple]) -> list: ...


class LocalProcesses:
    """This machine: process pools. The link pool forks from the run, so its workers inherit
    the parent's arrays (nothing large is pickled); the standardize pool's workers come from a
    small fork server (`small_worker_pool`): they are sent their chunks of distinct values and
    need nothing else. Survivorship's groups of clusters run in children forked from the run
    (`fork_map`) when rules/survivorship.yaml's `in_process_below` asks for them (off by
    default); `groups` (for `map`) is 1: the records are not pickled to local processes."""

    name = "local processes"

    def executor(self, workers: int) -> Executor | None:
        """A process pool of small workers for `workers` > 1 (see `small_worker_pool`)."""
        if workers is None or workers <= 1 or (os.cpu_count() or 1) <= 1:
            return None
        try:
            return small_worker_pool(workers)
        except Exception:  # no multiprocessing on this platform: stay in-process
            return None

    def usable(self, workers: int) -> bool:
        return workers > 1 and "fork" in mp.get_all_start_methods()

    def pool_with(self, shared: Any, workers: int) -> TaskPool:
        # The parent's objects are frozen out of the garbage collector while the workers
        # fork: a collection in a child writes to the header of every object it visits,
        # and copying those pages cost more than the work itself (1.5 s at 365k rows).
        # They stay frozen until the pool shuts down (`_FrozenForkPool`).
        memory.release_freed()  # the parent's freed heap is not resident when the workers fork
        gc.freeze()
        try:
            pool = _FrozenForkPool(
                max_workers=workers, mp_context=mp.get_context("fork"), initializer=_set_shared, initargs=(shared,)
            )
            pool.submit(int).result()  # the workers fork now, while frozen
        except BaseException:
            gc.unfreeze()
            raise
        return pool

    def groups(self, items: int) -> int:
        return 1

    def map(self, fn: Callable[..., Any], parts: list[tuple]) -> list:
        return [fn(*part) for part in parts]


class WorkerDied(CrmcleanError):
    """A forked child of `fork_map` was killed or failed: the stage (and the run) stops."""


def fork_map(
    fn: Callable[..., Any],
    parts: list[tuple],
    write: Callable[[Any, str], None],
    read: Callable[[str], Any],
    what: str = "work",
) -> list:
    """[fn(*part) for part in parts]: the first part in this process, each other in a child
    forked from it, so the children inherit `parts` (the run's records: nothing is pickled).
    A child hands its result back through a file (`write(result, path)`, then `read(path)`
    here: a compact format, not pickled objects). The heap is frozen out of the garbage
    collector before the fork, as for the link pool: a collection in either process would
    write to the header of every object and copy its page. A child that dies (killed, out of
    memory) or raises is a `WorkerDied` naming `what`; the other children are then killed."""
    if len(parts) <= 1:
        return [fn(*part) for part in parts]
    first_freeze = gc.get_freeze_count() == 0  # a frozen stage (cluster_stage) unfreezes itself
    memory.release_freed()
    gc.freeze()
    folder = tempfile.mkdtemp(prefix="crmclean-fork-")
    children: dict[int, int] = {}  # part -> pid, until reaped
    try:
        for k in range(1, len(parts)):
            pid = os.fork()
            if pid == 0:  # the child: never returns
                _forked_child(fn, parts[k], write, os.path.join(folder, str(k)))
            children[k] = pid
        results = [fn(*parts[0])]
        memory.release_freed()  # this part's freed working set, not resident while the children work
        for k in range(1, len(parts)):
            _reap(children.pop(k), os.path.join(folder, str(k)), f"{what} (part {k + 1} of {len(parts)})")
            results.append(read(os.path.join(folder, str(k))))
        return results
    finally:
        for pid in children.values():  # this process failed, or a child did: the rest go too
            _kill(pid)
        shutil.rmtree(folder, ignore_errors=True)
        if first_freeze:
            gc.unfreeze()


def _forked_child(fn: Callable[..., Any], part: tuple, write: Callable[[Any, str], None], path: str) -> None:
    """A `fork_map` child: its part's result into `path`, or its traceback into `path`.error.
    Leaves by os._exit: no atexit handler or buffered output of the parent runs twice."""
    code = 1
    try:
        try:  # Ctrl-C: the parent reports, the child just goes
            signal.signal(signal.SIGINT, signal.SIG_DFL)
        except ValueError:  # forked from a thread Python does not take for the main one
            pass
        result = fn(*part)
        memory.release_freed()  # the part's freed working set, not resident while it is written
        write(result, path)
        code = 0
    except BaseException:
        try:
            with open(path + ".error", "w", encoding="utf-8") as fh:
                fh.write(traceback.format_exc())
        except BaseException:
            pass
    finally:
        os._exit(code)


def _reap(pid: int, path: str, what: str) -> None:
    """Wait for a `fork_map` child; a WorkerDied saying how it ended unless it succeeded."""
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        hint = " (out of memory?)" if sig == signal.SIGKILL else ""
        raise WorkerDied(f"{what}: its worker process {pid} was killed by {name}{hint}; nothing was published")
    code = os.WEXITSTATUS(status)
    if code != 0:
        try:
            with open(path + ".error", encoding="utf-8") as fh:
                last = fh.read().strip().splitlines()[-1]
        except (OSError, IndexError):
            last = "no error message"
        raise WorkerDied(f"{what}: its worker process {pid} failed (exit code {code}): {last}; nothing was published")


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


class _FrozenForkPool(ProcessPoolExecutor):
    """The link pool: forked from the run, whose objects stay frozen out of the garbage
    collector while the pool is open. The workers share the parent's pages until either side
    writes to one; a collection in the parent writes to the header of every container it
    visits, so each one while the workers live copied the pages of every tracked object that
    was alive at the fork (the link's own new objects are still collected). Unfrozen at
    shutdown."""

    _frozen = True

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        try:
            super().shutdown(wait=wait, cancel_futures=cancel_futures)
        finally:
            if self._frozen:
                self._frozen = False
                gc.unfreeze()


# Modules the fork server of `small_worker_pool` imports before it forks any worker.
SMALL_WORKER_PRELOAD = ["crmclean.standardize.preload"]
_SERVER_USERS = [0]  # open small-worker pools; the fork server stops when the last one closes
_SERVER_LOCK = threading.Lock()


class _SmallWorkerPool(ProcessPoolExecutor):
    """A process pool whose fork server is stopped when no such pool is open any more (the
    server holds the standardizers' tables: ~200 MB that the later stages need not carry)."""

    def __init__(self, workers: int, context: Any):
        super().__init__(max_workers=workers, mp_context=context)
        with _SERVER_LOCK:
            _SERVER_USERS[0] += 1
            self._counted = True

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        super().shutdown(wait=wait, cancel_futures=cancel_futures)
        with _SERVER_LOCK:
            if self._counted:
                self._counted = False
                _SERVER_USERS[0] -= 1
                if _SERVER_USERS[0] == 0:
                    _stop_fork_server()


def _stop_fork_server() -> None:
    from multiprocessing import forkserver

    stop = getattr(forkserver._forkserver, "_stop", None)  # no public API; restarted on next use
    if stop is not None:
        stop()


def small_worker_pool(workers: int) -> ProcessPoolExecutor:
    """A pool whose workers do not inherit this process's memory.

    A fork pool's workers share the run's record frame at first, but each copies the pages it
    touches (the garbage collector visits every object), so memory grew with the worker count
    (3.4 GB PSS at 200k customers, 2 workers). These workers fork from a fork server that only
    imported `SMALL_WORKER_PRELOAD`, so what they share is the standardizers' tables. Where
    there is no fork server (Windows), the platform's default start method is used. As with
    any such pool, a script that runs the pipeline needs an `if __name__ == "__main__":`
    guard: each worker imports the script's main module (the `crmclean` command has one)."""
    if "forkserver" not in mp.get_all_start_methods():
        return ProcessPoolExecutor(max_workers=workers)
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(SMALL_WORKER_PRELOAD)
    return _SmallWorkerPool(workers, context)


class DaskCluster:
    """A dask.distributed cluster reached through `client`. Functions travel by reference, so
    every worker needs crmclean installed (the same version); data travels pickled. A task
    whose worker dies is rerun on another by the scheduler (up to its allowed failures)."""

    name = "dask"

    def __init__(self, client: Any):
        self.client = client

    def executor(self, workers: int) -> Executor | None:
        return self.client.get_executor(pure=False)

    def usable(self, workers: int) -> bool:
        return True

    def pool_with(self, shared: Any, workers: int) -> TaskPool:
        return _DaskSharedPool(self.client, shared)

    def groups(self, items: int) -> int:
        workers = len(self.client.scheduler_info(n_workers=-1).get("workers", {})) or 1
        return max(1, min(items, 4 * workers))

    def map(self, fn: Callable[..., Any], parts: list[tuple]) -> list:
        futures = [self.client.submit(fn, *part, pure=False) for part in parts]
        return self.client.gather(futures)


def _shared_copy(value: Any) -> Any:
    """Dask side: the shared value, as the result of a task whose spec holds it."""
    return value


class _DaskSharedPool:
    """The shared value is sent once, inside a task that returns it; each task names its future.

    Not scattered: scattered data has no spec to recompute it from, and a broadcast does not
    stay on every worker (the Active Memory Manager drops the extra replicas while no task waits
    for them there), so the death of the one worker left holding it lost the value and cancelled
    every task that needs it. A task's result is recomputed from its spec on another worker. The
    scheduler keeps that spec, hence a copy of the value, until the pool shuts down."""

    def __init__(self, client: Any, shared: Any):
        self.client = client
        with warnings.catch_warnings():  # the one large graph is this value, sent once on purpose
            warnings.filterwarnings("ignore", message="Sending large graph")
            self.handle = client.submit(_shared_copy, shared, pure=False)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        return self.client.submit(_with_shared, self.handle, fn, *args, pure=False)

    def shutdown(self) -> None:
        self.handle.release()


# ------------------------------------------------------------------- choosing and installing

_CURRENT: list[FanOut] = [LocalProcesses()]


def current() -> FanOut:
    """The fan-out of the running stage (local processes unless a run installed another)."""
    return _CURRENT[-1]


@contextmanager
def using(fanout: FanOut | None) -> Iterator[FanOut]:
    """Make `fanout` current inside the block (None: leave the current one)."""
    if fanout is None:
        yield current()
        return
    _CURRENT.append(fanout)
    try:
        yield fanout
    finally:
        _CURRENT.remove(fanout)


def local_cluster_options(workers: int) -> dict[str, Any]:
    """A LocalCluster of `workers` single-threaded worker processes (the standardizers and
    comparisons are CPU-bound Python: threads would only contend for the GIL)."""
    return {"n_workers": int(workers), "threads_per_worker": 1, "processes": True, "dashboard_address": ":0"}


@contextmanager
def open_fanout(dask_address: str | None = None, dask_workers: int = 0) -> Iterator[FanOut]:
    """The fan-out a run asks for: an existing Dask cluster at `dask_address`, a LocalCluster
    of `dask_workers` processes, or (neither) the one already current — local processes
    unless a caller installed a cluster. Anything opened here is closed on exit."""
    if not dask_address and not dask_workers:
        yield current()
        return
    if isinstance(current(), DaskCluster):  # the flow's DaskTaskRunner already connected
        yield current()
        return
    from distributed import Client, LocalCluster

    from .errors import CrmcleanError

    with ExitStack() as stack:
        try:
            if dask_address:
                client = stack.enter_context(Client(dask_address, timeout="30s", set_as_default=False))
            else:
                cluster = stack.enter_context(LocalCluster(**local_cluster_options(dask_workers)))
                client = stack.enter_context(Client(cluster, set_as_default=False))
        except (OSError, TimeoutError) as exc:
            raise CrmcleanError(
                f"cannot reach the Dask scheduler at {dask_address or 'a local cluster'}: {exc}"
            ) from exc
        yield DaskCluster(client)
