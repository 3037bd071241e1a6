"""Scaled out on real processes (issue 15's "Done when"): two `zapsync serve` replicas and two
`zapsync worker` processes on PostgreSQL and Redis, with the sandbox Evolution gateway as its
own process. A webhook taken by one replica reaches a socket on the other; an import whose
worker is killed with SIGKILL is retried and ends with a clean run's counts; a send whose
worker dies mid-delivery reaches the gateway once; the status sync runs once per period
however many workers run. Skipped only when PostgreSQL or Redis is not answering.

The tests share one cluster and run in file order (the status-sync periods are counted last,
over the whole run)."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from tests.support.cluster import (
    EVOLUTION_KEY,
    Cluster,
    Process,
    running_cluster,
    unavailable,
    until,
    until_async,
)
from zapsync.services.inbox.conversations import SEND_KIND

CUSTOMER = "5511987650001@s.whatsapp.net"
# Long enough to cut an import mid-way, short enough for the test's few minutes.
IMPORT_SHAPE = {"chats": 30, "groups": 0, "messages": 3000, "days": 5}
SLOW_MS = 200
# A worker silent this long has its jobs queued again (checked every 3 s); the outbox's
# claim lease is 2 x ZAPSYNC_GATEWAY_TIMEOUT + 5 = 11 s.
SETTINGS = {
    "ZAPSYNC_STATUS_SYNC_MINUTES": "1",
    "ZAPSYNC_JOBS_STALLED_SECONDS": "6",
    "ZAPSYNC_GATEWAY_TIMEOUT": "3",
    "ZAPSYNC_OUTBOX_BASE_DELAY": "0.5",
    "ZAPSYNC_HEAL_BASE_DELAY": "0",
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    root: Path = tmp_path_factory.mktemp("cluster")
    with running_cluster(root, settings=SETTINGS) as running:
        yield running


@pytest.fixture
async def replica_a(cluster: Cluster) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=cluster.replica("replica-a"), headers=cluster.headers, timeout=30
    ) as client:
        yield client


@pytest.fixture
async def sandbox(cluster: Cluster) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{cluster.sandbox}/_sandbox", timeout=30) as client:
        yield client


async def control(sandbox: httpx.AsyncClient, path: str, body: Any = None) -> Any:
    resp = await sandbox.post(path, json=body)
    resp.raise_for_status()
    return resp.json()


async def slow_gateway(sandbox: httpx.AsyncClient, latency_ms: int, answer_ms: int = 0) -> None:
    """Requests wait `latency_ms` before the gateway handles them, `answer_ms` after."""
    body = {"fault": "none", "latency_ms": latency_ms, "answer_latency_ms": answer_ms}
    await control(sandbox, "/fault", body)


async def paired_session(
    cluster: Cluster,
    replica: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    name: str,
    history: dict[str, Any] | None = None,
) -> int:
    """A session on the sandbox gateway created through `replica` (its webhooks go there),
    with `history` seeded, then paired: its import goes to a worker."""
    config = {"base_url": cluster.sandbox, "api_key": EVOLUTION_KEY, "instance": name}
    created = await replica.post(
        "/api/v1/sessions", json={"name": name, "provider": "evolution", "config": config}
    )
    assert created.status_code == 201, created.text
    sid = int(created.json()["id"])
    if history:
        await control(sandbox, f"/instances/{name}/seed", history)
    await control(sandbox, f"/instances/{name}/scan", {"phone": f"55119{sid:08d}"})

    async def connected() -> bool:
        resp = await replica.get(f"/api/v1/sessions/{sid}")
        return bool(resp.json()["status"] == "connected")

    await until_async(connected, 30, f"session {sid} connected")
    return sid


def import_runs(cluster: Cluster, sid: int) -> list[dict[str, Any]]:
    rows = cluster.query(
        "SELECT status, synced, created, updated, skipped, errors, report FROM sync_runs "
        "WHERE kind = 'import-conversations' AND session_id = %s ORDER BY id",
        sid,
    )
    keys = ("status", "synced", "created", "updated", "skipped", "errors", "report")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def finished_import(cluster: Cluster, sid: int) -> dict[str, Any] | None:
    runs = import_runs(cluster, sid)
    done = runs and runs[-1]["status"] in ("succeeded", "partial", "failed")
    return runs[-1] if done else None


def stored(cluster: Cluster, sid: int) -> tuple[int, int]:
    """(conversations, messages) the session has in the database."""
    ((conversations,),) = cluster.query(
        "SELECT count(*) FROM conversations WHERE session_id = %s", sid
    )
    ((messages,),) = cluster.query("SELECT count(*) FROM messages WHERE session_id = %s", sid)
    return int(conversations), int(messages)


def worker_that_logged(cluster: Cluster, event: str, seen: dict[str, int], **fields: Any) -> Any:
    """The live worker whose log gained an `event` line with `fields` since `seen` counts."""
    for worker in cluster.workers():
        if not worker.alive:
            continue
        lines = worker.log_events(event)[seen.get(worker.name, 0) :]
        if any(all(line.get(k) == v for k, v in fields.items()) for line in lines):
            return worker
    return None


def log_counts(cluster: Cluster, event: str) -> dict[str, int]:
    return {w.name: len(w.log_events(event)) for w in cluster.workers()}


def away_from_the_minute() -> bool:
    # The status sync fires at each minute's start: a worker killed then could take a
    # half-done status sync with it, which its retry would run a second time.
    return 5 <= time.time() % 60 <= 35


@asynccontextmanager
async def socket(url: str, token: str) -> AsyncIterator[list[tuple[str, Any]]]:
    client = socketio.AsyncClient(reconnection=False)
    received: list[tuple[str, Any]] = []

    @client.on("*")
    async def anything(event: str, data: Any) -> None:
        received.append((event, data))

    await client.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    try:
        yield received
    finally:
        await client.disconnect()


async def test_a_webhook_on_one_replica_reaches_a_socket_on_the_other(
    cluster: Cluster, replica_a: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    sid = await paired_session(cluster, replica_a, sandbox, "fanout")
    requests_on_b = len(cluster.processes["replica-b"].log_events("request"))
    async with socket(cluster.replica("replica-b"), cluster.token) as received:
        # the phone gets a message: the gateway posts it to replica A, the only one it knows
        await control(
            sandbox,
            "/instances/fanout/messages",
            {"chat_jid": CUSTOMER, "body": "de A para B", "push_name": "Rita"},
        )

        async def on_b() -> Any:
            return next(
                (d for e, d in received if e == "new_message" and d.get("body") == "de A para B"),
                None,
            )

        message = await until_async(on_b, 20, f"new_message on replica B\n{cluster.logs()}")
    assert message["session_id"] == sid
    webhooks_on_a = [
        r
        for r in cluster.processes["replica-a"].log_events("request")
        if str(r.get("path", "")).startswith("/api/v1/webhooks/")
    ]
    assert webhooks_on_a, "the gateway's webhook was taken by replica A"
    later_on_b = cluster.processes["replica-b"].log_events("request")[requests_on_b:]
    assert not [r for r in later_on_b if str(r.get("path", "")).startswith("/api/v1/webhooks/")]


async def test_an_import_cut_by_sigkill_is_retried_and_done_once_with_clean_counts(
    cluster: Cluster, replica_a: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    whole_sid = await paired_session(cluster, replica_a, sandbox, "whole", IMPORT_SHAPE)
    whole = until(lambda: finished_import(cluster, whole_sid), 60, "the uninterrupted import")
    assert whole["status"] == "succeeded", whole

    until(away_from_the_minute, 40, "a moment away from the status sync")
    await slow_gateway(sandbox, SLOW_MS)
    seen = log_counts(cluster, "import job started")
    cut_sid = await paired_session(cluster, replica_a, sandbox, "cut", IMPORT_SHAPE)
    victim: Process = until(
        lambda: worker_that_logged(cluster, "import job started", seen, session_id=cut_sid),
        30,
        "a worker taking the import",
    )
    # Some of the history is written, not all: the import is in the middle.
    until(lambda: stored(cluster, cut_sid)[1] > 0, 60, "the import's first pages written")
    victim.kill()
    await slow_gateway(sandbox, 0)
    messages_at_kill = stored(cluster, cut_sid)[1]
    assert messages_at_kill < IMPORT_SHAPE["messages"], "the import was over before the kill"
    assert import_runs(cluster, cut_sid)[-1]["status"] == "running"

    # Its heartbeat stops; another worker takes the job again and resumes the run.
    cut = until(lambda: finished_import(cluster, cut_sid), 90, f"the retry\n{cluster.logs()}")
    runs = import_runs(cluster, cut_sid)
    assert len(runs) == 1, "the retry resumed the run rather than starting another"
    assert cut["status"] == "succeeded", cut
    counted = ("synced", "created", "updated", "skipped", "errors")
    assert {k: cut[k] for k in counted} == {k: whole[k] for k in counted}
    # The page in flight at the kill is fetched again, and found stored: nothing else differs.
    cut_messages, whole_messages = cut["report"]["messages"], whole["report"]["messages"]
    refetched = cut_messages["already_stored"] - whole_messages["already_stored"]
    assert cut_messages["fetched"] - whole_messages["fetched"] == refetched
    again = ("fetched", "already_stored")
    assert {k: v for k, v in cut_messages.items() if k not in again} == {
        k: v for k, v in whole_messages.items() if k not in again
    }
    assert stored(cluster, cut_sid) == stored(cluster, whole_sid)
    assert stored(cluster, cut_sid)[1] == IMPORT_SHAPE["messages"]
    jobs = cluster.query(
        "SELECT status::text FROM procrastinate_jobs "
        "WHERE task_name = 'import-conversations' AND (args->>'session_id')::int = %s",
        cut_sid,
    )
    assert jobs == [("succeeded",)], "one job, taken again, not a second job"

    cluster.start_worker(f"{victim.name}-again")  # two workers again for what follows
    until(lambda: cluster.live_workers() >= 2, 60, "the replacement worker's heartbeat")


async def test_a_send_whose_worker_dies_mid_delivery_reaches_the_gateway_once(
    cluster: Cluster, replica_a: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    history = {"chats": 1, "groups": 0, "messages": 3, "days": 1}
    sid = await paired_session(cluster, replica_a, sandbox, "sends", history)
    until(lambda: finished_import(cluster, sid), 60, "the import of the session to send on")
    ((conversation_id,),) = cluster.query("SELECT id FROM conversations WHERE session_id = %s", sid)

    until(away_from_the_minute, 40, "a moment away from the status sync")
    # The gateway sends at once (and posts its echo to replica A) but answers 2 s later:
    # the worker is killed after the message went out, before it learned so.
    await slow_gateway(sandbox, 0, answer_ms=2000)
    seen = log_counts(cluster, "outbox job started")
    adopted = log_counts(cluster, "outbox adopted an echo")
    resp = await replica_a.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"type": "text", "content": "uma vez só"},
    )
    assert resp.status_code == 202, resp.text
    message_id = resp.json()["id"]
    victim: Process = until(
        lambda: worker_that_logged(cluster, "outbox job started", seen, kind=SEND_KIND),
        30,
        "a worker taking the send",
    )

    async def gone_out() -> bool:
        instance = (await sandbox.get("/instances/sends")).json()
        return any(m["body"] == "uma vez só" for m in instance["sent"])

    await until_async(gone_out, 30, "the send at the gateway", every=0.05)
    victim.kill()
    await slow_gateway(sandbox, 0)

    def delivered() -> bool:
        rows = cluster.query("SELECT status FROM outbox WHERE message_id = %s", message_id)
        return rows == [("done",)]

    until(delivered, 90, f"the send delivered by another worker\n{cluster.logs()}")
    instance = (await sandbox.get("/instances/sends")).json()
    assert [m["body"] for m in instance["sent"]] == ["uma vez só"], "sent exactly once"
    rows = cluster.query(
        "SELECT id, ack FROM messages WHERE session_id = %s AND body = %s", sid, "uma vez só"
    )
    assert rows == [(message_id, rows[0][1])] and rows[0][1] != "pending", rows
    assert rows[0][1] != "failed"
    # the retry found the gateway's echo of the first attempt and took it as the answer
    assert worker_that_logged(cluster, "outbox adopted an echo", adopted) is not None


def test_the_status_sync_runs_once_per_period_with_two_workers(cluster: Cluster) -> None:
    def periods() -> list[tuple[int, str]]:
        rows = cluster.query(
            "SELECT (args->>'timestamp')::bigint, status::text FROM procrastinate_jobs "
            "WHERE task_name = 'status-sync' ORDER BY 1"
        )
        return [(int(ts), str(status)) for ts, status in rows]

    def three_finished() -> list[tuple[int, str]] | None:
        found = periods()
        return found if len(found) >= 3 and all(s == "succeeded" for _, s in found) else None

    # The period the workers started in, and two after it, each finished.
    done = until(three_finished, 150, "three status-sync periods", every=1.0)
    stamps = [ts for ts, _ in done]
    assert len(stamps) == len(set(stamps)), f"a period deferred twice: {done}"
    assert all(b - a == 60 for a, b in itertools.pairwise(stamps)), stamps
    runs = cluster.query(
        "SELECT extract(epoch FROM started_at)::bigint FROM sync_runs "
        "WHERE kind = 'status-sync' AND trigger = 'schedule' ORDER BY started_at"
    )
    assert len(runs) == len(done), f"{len(runs)} status syncs ran for {len(done)} periods"
    minutes = [int(started) // 60 for (started,) in runs]
    assert len(minutes) == len(set(minutes)), "two status syncs in one minute"
    ran_on = {
        w.name for w in cluster.workers() if w.log_events("periodic job finished")
    }  # either worker may take a period; none takes one twice
    assert ran_on
