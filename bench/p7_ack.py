"""P7 the ACK path (issue 19): what one `ACK <code>` reply costs in AWS requests, and how long the responder waits
for its confirmation SMS.

N incidents, each paged to a responder of its own policy (one tier, a long timeout: nothing else happens), are
acknowledged one at a time by SMS, as End User Messaging delivers a reply: published to the inbound-sms topic, which
invokes `inbound_sms`. Measured without the call recorder: from the publish to the confirmation SMS being sent
(moto's SNS log), and the `inbound_sms` invocation itself. Then, for a few more incidents, with the recorder: the AWS
requests one ACK makes, in order (bench/awscalls.py).
"""

from __future__ import annotations

import time
from collections import Counter

from bench.awscalls import AwsCallRecorder
from bench.common import at, cli_args, median, percentile, settle, start_stack, summary, world, write_result
from local.polling import poll_until


def main() -> None:
    args = cli_args()
    acks, recorded = int(args.get("acks", 50)), int(args.get("recorded", 10))

    stack = start_stack()
    people = world(stack.api_url, stack.dev_url)
    invocations: list[float] = []
    inbound_sms = stack.handlers.inbound_sms

    def timed_inbound_sms(event, context):
        t0 = time.perf_counter()
        try:
            return inbound_sms(event, context)
        finally:
            invocations.append(time.perf_counter() - t0)

    stack.handlers.inbound_sms = timed_inbound_sms  # the stack looks the handler up on the module for each reply

    def texts(phone: str, prefix: str) -> list[dict]:
        return [m for m in stack.sms.listing() if m["to"] == phone and m["body"].startswith(prefix)]

    def paged_incident() -> tuple[dict, dict]:
        """A responder with a fresh number, and an incident that paged him (the page is on his phone)."""
        responder = people.responder()
        people.route_all_to(people.policy([[responder]], [3600]))
        incident = people.open_panic()
        assert poll_until(lambda: texts(responder["phone"], "EMERGENCY"), 30), "no page"
        return responder, incident

    def acknowledge(responder: dict, incident: dict) -> float:
        """Seconds from the reply's publish to the confirmation SMS."""
        settle()
        published = time.time()
        stack.publish_inbound_sms(responder["phone"], f"ACK {incident['reference'][3:7]}")
        confirmation = poll_until(lambda: texts(responder["phone"], "You acknowledged"), 30, interval=0.01)
        assert confirmation, "no ACK confirmation"
        return at(confirmation[0]["sent_at"]) - published

    acknowledge(*paged_incident())  # warm-up: the first reply wires inbound_sms
    invocations.clear()
    latencies = [acknowledge(*paged_incident()) for _ in range(acks)]
    handler_s = list(invocations)

    recorder = AwsCallRecorder(ddb_units=True).install()
    sequences = []
    for _ in range(recorded):
        responder, incident = paged_incident()
        mark = recorder.mark()
        acknowledge(responder, incident)
        sequences.append([c for c in recorder.since(mark) if c.origin == "lambda:inbound_sms"])
    recorder.uninstall()
    labels = Counter(tuple(c.label for c in calls) for calls in sequences)
    common = labels.most_common(1)[0][0]
    matching = [calls for calls in sequences if tuple(c.label for c in calls) == common]
    steps = [{"call": label, "site": matching[0][i].site,
              "median_ms": median(calls[i].duration * 1000 for calls in matching),
              "p99_ms": percentile([calls[i].duration * 1000 for calls in matching], 99),
              "wru": matching[0][i].wru, "rru": matching[0][i].rru} for i, label in enumerate(common)]

    write_result(args["out"], {
        "benchmark": "p7_ack",
        "acks": acks,
        "recorded": recorded,
        "publish_to_confirmation_s": summary(latencies),
        "inbound_sms_invocation_s": summary(handler_s),
        "requests_per_ack": summary(len(calls) for calls in sequences),
        "sequence": steps,
        "most_common_sequence_share": labels.most_common(1)[0][1] / len(sequences),
        "wru_per_ack": sum(s["wru"] for s in steps),
        "rru_per_ack": sum(s["rru"] for s in steps),
    })
    stack.stop()


if __name__ == "__main__":
    main()
