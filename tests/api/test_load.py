"""A bounded local load test of ``ltv serve``: 200 submissions from 20 concurrent clients.

50 distinct requests, each submitted 4 times in a shuffled order → exactly 50 runs, each
computed once, all succeeded, every answer a 202. Prints the throughput and latency of
``POST /forecasts`` (the test asserts correctness, not timing). Loopback only, bounded in
count and time.
"""

from __future__ import annotations

import http.client
import json
import random
import statistics
import threading
import time

from ltvcore.cli.serve import make_server

CLIENTS = 20
DISTINCT = 50
REPEATS = 4


def test_200_submissions_from_20_clients_make_exactly_50_runs(make_api) -> None:
    api = make_api(local=True, workers=2)
    server = make_server(api.app, port=0, quiet=True)
    port = server.server_address[1]
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()

    bodies = [{"dataset": "demo", "horizons": [30, 60 + i], "notify": []} for i in range(DISTINCT)]
    order = [i for i in range(DISTINCT) for _ in range(REPEATS)]
    random.Random(5).shuffle(order)
    lanes = [order[c::CLIENTS] for c in range(CLIENTS)]
    results: list[tuple[int, int, float, str]] = []  # (request, status, seconds, run id)
    errors: list[str] = []
    lock = threading.Lock()
    start_line = threading.Barrier(CLIENTS)

    def client(lane: list[int]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)  # keep-alive
        start_line.wait()
        try:
            for index in lane:
                payload = json.dumps(bodies[index]).encode()
                began = time.perf_counter()
                connection.request("POST", "/forecasts", body=payload,
                                   headers={"Content-Type": "application/json",
                                            "X-Ltv-User": "load-test"})
                response = connection.getresponse()
                raw = response.read()
                elapsed = time.perf_counter() - began
                run_id = json.loads(raw).get("run_id", "") if response.status == 202 else ""
                with lock:
                    results.append((index, response.status, elapsed, run_id))
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            with lock:
                errors.append(repr(error))
        finally:
            connection.close()

    try:
        threads = [threading.Thread(target=client, args=(lane,)) for lane in lanes]
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        submitted = time.perf_counter() - began
        assert not errors, errors
        assert len(results) == DISTINCT * REPEATS
        assert {status for _, status, _, _ in results} == {202}

        assert api.launcher.wait_idle(timeout=180), "forecasts did not finish in time"
        computed = time.perf_counter() - began
    finally:
        server.shutdown()
        server.server_close()

    ids_by_request: dict[int, set[str]] = {}
    for index, _, _, run_id in results:
        ids_by_request.setdefault(index, set()).add(run_id)
    assert all(len(ids) == 1 for ids in ids_by_request.values())
    run_ids = {next(iter(ids)) for ids in ids_by_request.values()}
    assert len(run_ids) == DISTINCT
    runs = api.service.runs(limit=1000)
    assert {r["run_id"] for r in runs} == run_ids
    assert {r["status"] for r in runs} == {"succeeded"}, [r for r in runs
                                                          if r["status"] != "succeeded"]
    assert len(api.recorder.calls) == DISTINCT  # one computation per distinct request

    latencies = sorted(elapsed for _, _, elapsed, _ in results)
    p95 = latencies[int(0.95 * len(latencies)) - 1]
    print(f"\nPOST /forecasts: {len(results)} requests from {CLIENTS} clients in {submitted:.2f} s"
          f" = {len(results) / submitted:.0f} req/s; latency median "
          f"{statistics.median(latencies) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
          f"max {latencies[-1] * 1000:.1f} ms; {DISTINCT} runs computed in {computed:.1f} s")
