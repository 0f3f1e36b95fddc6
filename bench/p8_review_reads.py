"""P8 reviewer reads (issue 18.2): DynamoDB items read, and time, per reviewer request as the incidents grow.

Incidents are seeded straight through the service's own intake (`IncidentIntake.open_for`: the same transaction an
API POST writes, without the HTTP round trip) up to each size in turn (for example 250, then 1,000, then 10,000): 98%
`delivery_issue` (routed to support, not paged) and 2% `privacy` (paged; the policy's responder is inactive, so their
escalations end at once). At each size, every request is made twice over the HTTP API as a reviewer: once with the
AWS call recorder (bench/awscalls.py) to count the items its DynamoDB reads read (a Query's ScannedCount: what
DynamoDB bills, a filter does not reduce it), once without it, timed.

Requests:
- `list_first`     GET /v1/incidents?limit=50                              (the newest page)
- `list_deep`      the same, five pages in (its cursor)                      (a cursor must not read what came before)
- `list_filtered`  GET /v1/incidents?kind=privacy&limit=50                   (a sparse filter)
- `metrics`        GET /v1/review/metrics                                   (every incident of the default range)
- `export`         GET /v1/review/export                                    (the same, as CSV)
Linear in what is returned: a list page reads about its page whatever the size; a filtered page reads at most its
request's budget (max(200, 4 x limit) incidents, then a cursor where it stopped); metrics and export read each
incident of the range once.
"""

from __future__ import annotations

import time
import uuid

from bench.awscalls import AwsCallRecorder
from bench.common import cli_args, inactive_responder, int_list, start_stack, world, write_result

PAGE = 50
DEEP_PAGES = 5
SPARSE_KIND, SPARSE_EVERY = "privacy", 50  # one incident in 50
# Targets: items read per item returned (list pages), per incident in range (metrics, export).
LIST_READ_RATIO, RANGE_READ_RATIO = 2.0, 1.1


def seed(intake, count: int, start: int) -> None:
    """`count` more incidents, numbered from `start` (every SPARSE_EVERY-th of the sparse kind)."""
    from chalicelib.domain.incidents import Actor
    from chalicelib.services.intake import request_fingerprint

    for number in range(start, start + count):
        kind = SPARSE_KIND if number % SPARSE_EVERY == 0 else "delivery_issue"
        request = {"kind": kind, "description": f"seeded incident {number}"}
        owner = f"p8-shopper-{number}"
        intake.open_for(owner, kind, request, request_fingerprint(request), f"inc_{uuid.uuid4().hex[:20]}",
                        keyed=False, actor=Actor("shopper", owner))


def main() -> None:
    args = cli_args()
    sizes = int_list(args.get("sizes", "250,1000,10000"))

    stack = start_stack()
    people = world(stack.api_url, stack.dev_url)
    people.route_all_to(people.policy([[inactive_responder(people)]], [60]))
    reviewer = people.reviewer
    from chalicelib.services import get_services

    intake = get_services().intake
    recorder = AwsCallRecorder(ddb_units=False)

    def requests_at() -> dict[str, tuple[str, dict]]:
        cursor, depth = None, 1
        while depth < DEEP_PAGES:  # the cursor of page DEEP_PAGES (or of the last page, with fewer incidents)
            page = reviewer.get("/v1/incidents", params={"limit": PAGE, **({"cursor": cursor} if cursor else {})})
            if "next_cursor" not in page.json():
                break
            cursor, depth = page.json()["next_cursor"], depth + 1
        return {
            "list_first": ("/v1/incidents", {"limit": PAGE}),
            "list_deep": ("/v1/incidents", {"limit": PAGE, **({"cursor": cursor} if cursor else {}), "_page": depth}),
            "list_filtered": ("/v1/incidents", {"limit": PAGE, "kind": SPARSE_KIND}),
            "metrics": ("/v1/review/metrics", {}),
            "export": ("/v1/review/export", {}),
        }

    def returned(name: str, response) -> int:
        if name.startswith("list"):
            return len(response.json()["incidents"])
        if name == "metrics":
            return response.json()["metrics"]["incidents"]
        return len(response.text.strip().splitlines()) - 1  # CSV rows after the header

    results = []
    seeded, seed_s = 0, 0.0
    for size in sizes:
        t0 = time.perf_counter()
        seed(intake, size - seeded, seeded)
        seed_s += time.perf_counter() - t0
        seeded = size
        measured = {}
        for name, (path, query) in requests_at().items():
            params = {k: v for k, v in query.items() if not k.startswith("_")}
            recorder.install()
            mark = recorder.mark()
            response = reviewer.get(path, params=params, timeout=300)
            recorder.uninstall()
            assert response.status_code == 200, response.text[:500]
            reads = [c for c in recorder.since(mark) if c.origin.startswith("api:") and c.service == "dynamodb"]
            t0 = time.perf_counter()
            timed = reviewer.get(path, params=params, timeout=300)
            elapsed = time.perf_counter() - t0
            assert timed.status_code == 200, timed.text[:500]
            count = returned(name, response)
            items = sum(c.items_read for c in reads)
            measured[name] = {"returned": count, "items_read": items, "requests": len(reads),
                              "read_per_returned": items / count if count else None, "seconds": elapsed}
            if "_page" in query:
                measured[name]["page"] = query["_page"]
        results.append({"incidents": size, "requests": measured})

    def linear(entry: dict) -> bool:
        requests = entry["requests"]
        lists = all((requests[name]["read_per_returned"] or 0) <= LIST_READ_RATIO for name in ("list_first", "list_deep"))
        ranges = all(requests[name]["items_read"] <= RANGE_READ_RATIO * entry["incidents"] + 4 * PAGE
                     for name in ("metrics", "export"))
        # A sparse filter reads at most one request's budget (services/review.py), plus the shards' last pages.
        from chalicelib.services.review import SCAN_FLOOR, SCAN_PER_ITEM

        bounded = requests["list_filtered"]["items_read"] <= 1.5 * max(SCAN_FLOOR, SCAN_PER_ITEM * PAGE)
        return lists and ranges and bounded

    write_result(args["out"], {
        "benchmark": "p8_review_reads",
        "incident_counts": sizes,
        "page": PAGE,
        "sparse": {"kind": SPARSE_KIND, "one_in": SPARSE_EVERY},
        "seed_s": seed_s,
        "results": results,
        "linear": all(linear(entry) for entry in results),
        "targets": {"list_read_per_returned": LIST_READ_RATIO, "range_read_per_incident": RANGE_READ_RATIO},
    })
    stack.stop()


if __name__ == "__main__":
    main()
