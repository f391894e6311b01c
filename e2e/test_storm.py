"""PROTOCOL.md 2.6: a join storm. 3,000 listeners join one event; the notices they cause must
stay far below N^2 (coalesced list and count, no individual notices above the limit)."""

import asyncio
import json
import resource
import time
from collections import Counter

from awtest import close_all, connect, go_live, join_path, metric_sum, metrics, recv_json, run, uid

N = 3000
CONCURRENCY = 200
NOTICE_LIMIT = 200      # server default: individual participant_joined up to this many
LIST_LIMIT = 1000       # server default: listeners in participant_list
EARLY = 10              # joined one by one first; must be cut from the final truncated list


def raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))


def frame_type(raw: bytes) -> str:
    # The server writes "type" first: {"type":"..."...
    if raw.startswith(b'{"type":"'):
        end = raw.index(b'"', 9)
        return raw[9:end].decode()
    return json.loads(raw)["type"]


class Client:
    __slots__ = ("ws", "user_id", "types", "first", "task")

    def __init__(self, ws, user_id):
        self.ws = ws
        self.user_id = user_id
        self.types = Counter()
        self.first = []
        self.task = None

    async def read(self):
        try:
            while True:
                raw = await self.ws.recv(decode=False)
                t = frame_type(raw)
                self.types[t] += 1
                if len(self.first) < 2:
                    self.first.append(t)
        except Exception:
            return


def test_join_storm(start_server):
    raise_fd_limit(2 * N + 500)
    srv = start_server("--max-connections-per-ip", str(2 * N), startup_timeout=60)  # all from 127.0.0.1

    async def main():
        before = metrics(srv)
        out_before = metric_sum(before, "airwave_messages_out_total")
        host_id = uid("storm-host")
        host_ws, link = await go_live(srv, host_id)
        ev = link["event_id"]
        host_types = Counter()
        host_state = {"last_list": None, "last_count": None}
        final = asyncio.Event()

        async def host_reader():
            try:
                while True:
                    msg = json.loads(await host_ws.recv())
                    host_types[msg["type"]] += 1
                    if msg["type"] == "participant_list":
                        host_state["last_list"] = msg
                    elif msg["type"] == "participant_count":
                        host_state["last_count"] = msg["count"]
                    lst = host_state["last_list"]
                    if host_state["last_count"] == N and lst is not None and lst.get("total") in (N, N + 1):
                        final.set()
            except Exception:
                return

        host_task = asyncio.create_task(host_reader())
        prefix = uid("s")
        clients = []
        sem = asyncio.Semaphore(CONCURRENCY)

        async def open_one(i):
            async with sem:
                user = f"{prefix}.{i}"
                ws = await connect(srv.ws(join_path(ev, user)), open_timeout=60, max_size=16 * 1024 * 1024)
                c = Client(ws, user)
                c.task = asyncio.create_task(c.read())
                clients.append(c)

        t0 = time.monotonic()
        for i in range(EARLY):
            await open_one(i)
        results = await asyncio.gather(*(open_one(i) for i in range(EARLY, N)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, f"{len(errors)} joins failed, e.g. {errors[:3]!r}"
        joined_in = time.monotonic() - t0
        # Everyone is in once the host sees the final count and a list with the full total.
        await asyncio.wait_for(final.wait(), 60)
        # Let the last coalesced notices reach every client.
        await asyncio.sleep(2.5)
        settle = time.monotonic() - t0

        total = sum(sum(c.types.values()) for c in clients) + sum(host_types.values())
        by_type = Counter()
        for c in clients:
            by_type.update(c.types)
        by_type.update(host_types)
        after = metrics(srv)
        out_delta = metric_sum(after, "airwave_messages_out_total") - out_before
        report = (f"N={N} joined in {joined_in:.1f}s, settled {settle:.1f}s, frames={total}, "
                  f"metrics out delta={out_delta:.0f}, by type={dict(by_type)}")
        print(report)

        # Each joiner got stream_state then chat_history first.
        bad_first = [c.user_id for c in clients if c.first != ["stream_state", "chat_history"]]
        assert not bad_first, f"{len(bad_first)} joiners did not get stream_state, chat_history first: {bad_first[:5]}"
        # Work proportional to N, far from N^2 (9,000,000 here). What the protocol allows:
        # stream_state + chat_history per joiner, individual joins up to the limit, and at most
        # one list and one count per second per connection while the storm lasts.
        individual = NOTICE_LIMIT * (NOTICE_LIMIT + 1) // 2 + NOTICE_LIMIT
        allowed = 2 * N + individual + 2 * (settle + 2) * (N + 1)
        assert total <= allowed, f"more frames than coalescing allows ({allowed:.0f}): {report}"
        assert total < 40 * N, report
        assert out_delta < 40 * N, report
        assert out_delta < N * N / 100, report
        # participant_joined stops above the individual-notice limit.
        assert host_types["participant_joined"] == NOTICE_LIMIT, report
        assert by_type["participant_joined"] <= NOTICE_LIMIT * (NOTICE_LIMIT + 1) // 2 + NOTICE_LIMIT, report
        late = [c for c in clients[NOTICE_LIMIT + 50:] if c.types["participant_joined"]]
        assert not late, f"{len(late)} late joiners received participant_joined"
        # Coalesced: at most about one list and one count per second per connection.
        per_conn_cap = settle + 3
        assert host_types["participant_list"] <= per_conn_cap, report
        assert host_types["participant_count"] <= per_conn_cap, report
        assert max(c.types["participant_list"] for c in clients) <= per_conn_cap
        # The final list is truncated: host + 1,000 most recent listeners, with the total.
        lst = host_state["last_list"]
        assert lst["truncated"] is True, {k: v for k, v in lst.items() if k != "participants"}
        assert lst["total"] in (N, N + 1), lst["total"]
        entries = lst["participants"]
        assert entries[0]["user_id"] == host_id and entries[0]["role"] == "host"
        assert len(entries) == 1 + LIST_LIMIT, len(entries)
        ids = {e["user_id"] for e in entries[1:]}
        assert len(ids) == LIST_LIMIT
        assert ids <= {c.user_id for c in clients}
        early = {f"{prefix}.{i}" for i in range(EARLY)}
        assert not (ids & early), "the truncated list must hold the most recent listeners"
        assert host_state["last_count"] == N
        # Every listener ended up with the final count.
        stale = [c.user_id for c in clients if c.types["participant_count"] == 0]
        assert len(stale) == 0, f"{len(stale)} listeners never received participant_count"

        # Tear down quickly: abort the sockets instead of 3,000 close handshakes.
        for c in clients:
            c.ws.transport.abort()
        for c in clients:
            c.task.cancel()
        host_task.cancel()
        await close_all(host_ws)

    run(main(), timeout=170)
