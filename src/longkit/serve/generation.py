"""The one generation path behind every answer: a request's choices run together on the engine and report what they
produce as events, which the JSON answer collects and the streamed answer forwards as they come."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncGenerator, Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.requests import Request

from longkit.serve.batching import Sampling, ServingEngine
from longkit.serve.protocol import ApiError
from longkit.serve.record import record_of
from longkit.serve.streaming import Delta, text_deltas
from longkit.serve.wire import FinishReason

T = TypeVar("T")


@dataclass
class Job:
    """One prompt to answer `n` times."""

    prompt_ids: list[int]
    prompt_text: str
    first_index: int  # index of its first choice in the response


@dataclass
class Plan:
    """What one request generates: every job's n choices, with one sampling setting and the same stop strings."""

    jobs: list[Job]
    n: int
    sampling: Sampling
    stops: list[str]

    @property
    def slots(self) -> int:
        """Generations the plan runs at once."""
        return len(self.jobs) * self.n

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens of the request (each prompt counted once, whatever n is)."""
        return sum(len(j.prompt_ids) for j in self.jobs)

    def choices(self) -> list[tuple[int, Job]]:
        """(choice index, its job) of every choice, in index order."""
        return [(j.first_index + k, j) for j in self.jobs for k in range(self.n)]

    def sampling_of(self, index: int, job: Job) -> Sampling:
        """The sampling of one choice: with a seed, the job's k-th choice is seeded seed + k (as vLLM seeds its n
        samples), so that the n choices differ and the same request gives the same set again."""
        seed = self.sampling.seed
        if seed is None or index == job.first_index:
            return self.sampling
        return dataclasses.replace(self.sampling, seed=wrap_seed(seed + index - job.first_index))


SEED_SPAN = 2**64  # torch.manual_seed takes seeds in [-2**63, 2**64): past the top, count on from the bottom


def wrap_seed(seed: int) -> int:
    """A seed moved back into the range torch accepts."""
    return seed - SEED_SPAN if seed >= SEED_SPAN else seed


@dataclass
class Choice:
    """A finished choice."""

    index: int
    job: Job
    text: str = ""
    finish_reason: FinishReason | None = None
    token_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Started:
    """A choice began generating."""

    index: int
    job: Job


@dataclass(frozen=True)
class Progress:
    """A choice produced text; its last Progress carries the finish reason and every generated token."""

    index: int
    delta: Delta


@dataclass(frozen=True)
class Failed:
    """A choice could not be generated (the engine refused or failed)."""

    index: int
    error: ApiError


Event = Started | Progress | Failed


async def _run_choice(engine: ServingEngine, plan: Plan, index: int, job: Job, queue: asyncio.Queue[Event]) -> None:
    queue.put_nowait(Started(index, job))
    try:
        async for delta in text_deltas(engine, job.prompt_ids, plan.sampling_of(index, job), plan.stops):
            queue.put_nowait(Progress(index, delta))
    except ApiError as exc:
        queue.put_nowait(Failed(index, exc))


async def generate(engine: ServingEngine, plan: Plan, timeout: float) -> AsyncGenerator[Event, None]:
    """Run every choice of the plan together and yield their events as they come. Past `timeout` seconds this raises
    a 408; then, as when the consumer stops early, the choices still running are cancelled in the engine."""
    queue: asyncio.Queue[Event] = asyncio.Queue()
    tasks = [asyncio.ensure_future(_run_choice(engine, plan, index, job, queue)) for index, job in plan.choices()]
    waiter = asyncio.ensure_future(asyncio.gather(*tasks))
    deadline = time.monotonic() + timeout
    getter: asyncio.Future[Event] | None = None
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            pending: set[asyncio.Future[Event] | asyncio.Future[list[None]]] = {getter, waiter}
            done, _ = await asyncio.wait(
                pending, timeout=max(0.0, deadline - time.monotonic()), return_when=asyncio.FIRST_COMPLETED
            )
            if getter in done:
                yield getter.result()
                continue
            if waiter in done:
                while not queue.empty():
                    yield queue.get_nowait()
                waiter.result()  # a bug inside a choice is raised here, not lost
                return
            raise ApiError(408, f"generation took longer than this server's request timeout of {timeout:g} s")
    finally:
        # every task is cancelled and awaited here, the queue's getter too: a task left pending when the event
        # loop closes (server shutdown) is reported as "Task was destroyed but it is pending"
        running: list[asyncio.Future[Any]] = [*tasks] if getter is None else [getter, *tasks]
        for t in running:
            t.cancel()
        await asyncio.gather(waiter, *running, return_exceptions=True)


async def collect(engine: ServingEngine, plan: Plan, timeout: float) -> list[Choice]:
    """Every choice of the plan, finished, in index order; the first choice that fails fails the request."""
    choices = {index: Choice(index, job) for index, job in plan.choices()}
    async with contextlib.aclosing(generate(engine, plan, timeout)) as events:
        async for event in events:
            if isinstance(event, Failed):
                raise event.error
            if isinstance(event, Progress):
                c, d = choices[event.index], event.delta
                c.text += d.text
                c.finish_reason, c.token_ids = d.finish_reason, d.token_ids
    return [choices[i] for i in sorted(choices)]


async def until_disconnect(request: Request) -> None:
    """Return when the client hangs up (the request body has been read by then)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """The result of `work`, or a 499 (nginx's code for it; nobody receives it) once the client hangs up, which
    cancels the work and with it its generations."""
    task, watch = asyncio.ensure_future(work), asyncio.ensure_future(until_disconnect(request))
    try:
        done, _ = await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (task, watch):
            t.cancel()
        await asyncio.gather(task, watch, return_exceptions=True)
    if task in done:
        return task.result()
    record_of(request.scope).disconnected = True
    raise ApiError(499, "client disconnected")
