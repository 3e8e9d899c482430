"""The batch driver: Ray actors that each hold one model session, retries, progress, and the index.

The driver hands one video at a time to each idle actor and collects replies as they come
(`ray.wait`). A video whose actor dies (killed, out of memory, node lost) or that fails is put back
at the head of the queue for another actor; after ATTEMPTS tries it is recorded as failed. A dead
actor is replaced, so the pool keeps its size.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from polypview.batchjob import (
    BatchSettings,
    VideoJob,
    file_sha256,
    is_done,
    output_names,
    process_video,
    read_summary,
)
from polypview.errors import ConfigError, ModelFileError, PolypviewError
from polypview.interrupt import sigint_ignored, sigint_sets

ATTEMPTS = 2
FAILED_EXIT = 1
INTERRUPTED_EXIT = 130
POLL_S = 0.5


@dataclass
class Outcome:
    """What became of one video in this batch."""

    job: VideoJob
    status: str  # "done" | "skipped" (done by an earlier run) | "failed" | "interrupted"
    summary: dict | None = None
    error: str | None = None
    attempts: int = 0


class BatchWorker:
    """The body of a Ray actor: one model session with one inference thread; videos one at a time."""

    def __init__(self, model: str | None, backend: str):
        self.model, self.backend = model, backend
        self.engine = None

    def pid(self) -> int:
        return os.getpid()

    def process(self, job: VideoJob, settings: BatchSettings, attempt: int) -> dict:
        """{"status": "done", "summary": ...} or {"status": "failed", "error": one line}."""
        try:
            return {"status": "done", "summary": process_video(job, self._engine(settings), settings, attempt)}
        except PolypviewError as exc:
            return {"status": "failed", "error": str(exc)}
        except Exception as exc:  # a bug must not take the batch down: record it against the video
            return {"status": "failed", "error": f"unexpected {type(exc).__name__}: {exc}"}

    def _engine(self, settings: BatchSettings):
        if self.engine is None:
            from polypview.inference.runtime.engine import load_engine, resolve_model

            path = resolve_model(self.model)
            if file_sha256(path) != settings.model_sha256:
                raise ModelFileError(f"model file {path} on {socket.gethostname()} differs from the one the batch "
                                     "was started with: install the same polypview and model on every node")
            self.engine = load_engine(path, backend=self.backend, threads=1)
        return self.engine


def import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("polypview batch runs on Ray, which is not installed: pip install 'polypview[batch]'") from None
    return ray


def default_workers(ray) -> int:
    """One worker per CPU that Ray reports (the local machine's, or the whole cluster's)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


@contextmanager
def ray_session(address: str | None, workers: int | None):
    """Ray for the batch: the running one (tests, notebooks), the cluster at `address`, or a local one."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        if address:
            ray.init(address=address, **options)
        else:  # Ray starts workers at nice 15 by default: here they are the job, not background help
            ray.init(num_cpus=max(workers or 0, os.cpu_count() or 1), _system_config={"worker_niceness": 0},
                     **options)
    except Exception as exc:  # ConnectionError, RuntimeError, ...: one line, not Ray's traceback
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise ConfigError(f"cannot start {where}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") \
            from None
    try:
        yield ray
    finally:
        ray.shutdown()


class BatchRunner:
    """Runs a batch: skips finished videos, dispatches the rest, writes the index, picks the exit code."""

    def __init__(self, videos: list[Path], out_dir: Path, settings: BatchSettings, model: str | None = None,
                 backend: str = "auto", force: bool = False, progress: bool = True, on_submit=None):
        self.jobs = [VideoJob(str(v), name, str(out_dir)) for v, name in zip(videos, output_names(videos))]
        self.out_dir, self.settings = Path(out_dir), settings
        self.model, self.backend, self.force = model, backend, force
        self.progress = progress
        self.on_submit = on_submit  # called (job, attempt, worker pid) as each video is handed out
        self.outcomes: dict[str, Outcome] = {}
        self.frames_done = 0
        self.started = 0.0

    def run(self, workers: int | None = None, address: str | None = None) -> int:
        self.started = time.monotonic()
        todo = self._plan()
        interrupted = False
        if todo:
            with ray_session(address, workers) as ray:
                interrupted = self._dispatch(ray, todo, workers)
        if interrupted:  # again, now that the workers are gone: none can leave a file behind any more
            for job in todo:
                job.remove_partials()
        from polypview.batchindex import print_table, write_index

        outcomes = [self.outcomes[job.name] for job in self.jobs]
        write_index(self.out_dir, outcomes, self.settings)
        print_table(outcomes, time.monotonic() - self.started, self.out_dir)
        if interrupted:
            print("polypview: interrupted; finished videos are kept, unfinished ones left no files", file=sys.stderr)
            return INTERRUPTED_EXIT
        failed = [o for o in outcomes if o.status == "failed"]
        for o in failed:
            where = "" if o.job.path in (o.error or "") else f"{o.job.path}: "
            print(f"polypview: error: {where}{o.error}", file=sys.stderr)
        return FAILED_EXIT if failed else 0

    def _plan(self) -> list[VideoJob]:
        todo = []
        for job in self.jobs:
            if not self.force and is_done(job, self.settings):
                self.outcomes[job.name] = Outcome(job, "skipped", read_summary(job))
            else:
                self.outcomes[job.name] = Outcome(job, "interrupted")
                todo.append(job)
        return todo

    def _dispatch(self, ray, todo: list[VideoJob], workers: int | None) -> bool:
        """Run `todo` on a pool of actors; True when Ctrl-C stopped it.

        Ctrl-C sets an event that the loop reads every POLL_S (`interrupt.sigint_sets`): a
        KeyboardInterrupt raised inside Ray's blocking calls can be lost, and the batch then ran on."""
        actor_class = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(BatchWorker)
        pool = Pool(ray, actor_class, self.model, self.backend)
        bar = self._bar(len(self.jobs) - len(todo))
        running: dict = {}
        stop = threading.Event()
        try:
            with sigint_sets(stop):
                pool.grow(min(workers or default_workers(ray), len(todo)))
                pending = deque((job, 1, None) for job in todo)  # (job, attempt, the worker it failed on)
                while (pending or running) and not stop.is_set():
                    self._submit(pool, pending, running)
                    ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
                    for ref in ready:
                        self._collect(ray, pool, ref, running.pop(ref), pending, bar)
        except KeyboardInterrupt:  # came before the handler was in place
            stop.set()
        finally:
            bar.close()
        if not stop.is_set():
            return False
        with sigint_ignored():
            pool.kill_all()
            for job, _, _ in running.values():
                job.remove_partials()
        return True

    def _submit(self, pool: Pool, pending: deque, running: dict) -> None:
        """Hand pending videos to idle workers, the first in line first; a video that failed goes to
        another worker than the one it failed on (a badly set-up node must not fail it twice), unless
        the pool has only that one."""
        while pending and pool.idle:
            pick = self._pick(pool, pending, len(running))
            if pick is None:  # what is left waits for a worker that is busy now
                return
            job, attempt, _ = pending[pick[0]]
            del pending[pick[0]]
            actor = pick[1]
            pool.idle.remove(actor)
            running[actor.process.remote(job, self.settings, attempt)] = (job, attempt, actor)
            if self.on_submit is not None:
                self.on_submit(job, attempt, pool.pids[actor])

    @staticmethod
    def _pick(pool: Pool, pending: deque, busy: int):
        """(index in pending, idle worker) of the next video to start, or None."""
        alone = len(pool.idle) + busy == 1
        for i, (_, _, failed_on) in enumerate(pending):
            for actor in pool.idle:
                if actor is not failed_on or alone:
                    return i, actor
        return None

    def _collect(self, ray, pool: Pool, ref, entry, pending: deque, bar) -> None:
        job, attempt, actor = entry
        try:
            reply = ray.get(ref)
            pool.idle.append(actor)
        except ray.exceptions.RayError as exc:  # the actor's process died: replace it
            reply = {"status": "failed", "error": f"its worker died ({_first_line(exc)})"}
            pool.replace(actor)
        if reply["status"] == "done":
            self.outcomes[job.name] = Outcome(job, "done", reply["summary"], attempts=attempt)
            self.frames_done += reply["summary"]["frames"]
        elif attempt < ATTEMPTS:
            job.remove_partials()
            pending.appendleft((job, attempt + 1, actor))  # a dead worker's replacement is another worker
            return
        else:
            job.remove_partials()
            self.outcomes[job.name] = Outcome(job, "failed", error=reply["error"], attempts=attempt)
        bar.update(1)
        elapsed = time.monotonic() - self.started
        bar.set_postfix_str(f"{self.frames_done / elapsed:.1f} frames/s" if elapsed > 0 else "")

    def _bar(self, initial: int):
        from tqdm import tqdm

        return tqdm(total=len(self.jobs), initial=initial, unit="video", file=sys.stderr,
                    disable=None if self.progress else True, dynamic_ncols=True)


class Pool:
    """The batch's actors: which are idle, each one's process id, and replacement of dead ones."""

    def __init__(self, ray, actor_class, model, backend):
        self.ray, self.actor_class, self.model, self.backend = ray, actor_class, model, backend
        self.idle: deque = deque()
        self.pids: dict = {}

    def grow(self, count: int) -> None:
        actors = [self.actor_class.remote(self.model, self.backend) for _ in range(count)]
        for actor, pid in zip(actors, self.ray.get([a.pid.remote() for a in actors])):
            self.pids[actor] = pid
            self.idle.append(actor)

    def replace(self, actor) -> None:
        self.pids.pop(actor, None)
        try:
            self.ray.kill(actor)
        except Exception:  # already gone
            pass
        self.grow(1)

    def kill_all(self) -> None:
        for actor in list(self.pids):
            try:
                self.ray.kill(actor)
            except Exception:
                pass
        self.pids.clear()
        self.idle.clear()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


